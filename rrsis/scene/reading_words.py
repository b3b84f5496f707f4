"""The English words :mod:`rrsis.scene.reading` reads: counts, the words that end an
expression's head, places, extremes, relations to another object, colours and plurals.

Only the tables live here, so that what the rules know is one place to read and extend; the rules
themselves are in :mod:`rrsis.scene.reading`.
"""

from __future__ import annotations

COUNT_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "both": 2, "pair": 2, "couple": 2,
                "one": 1, "single": 1, "a": 1, "an": 1}
EVERY_WORDS = {"all", "every", "each", "several", "many", "multiple", "some", "few", "numerous", "various"}
# Words that end the head: prepositions, relative words, verbs and the start of a clause.
BOUNDARY = {
    "of", "in", "on", "at", "near", "nearby", "next", "beside", "besides", "between", "among", "amid",
    "with", "without", "along", "alongside", "across", "by", "to", "from", "under", "over", "above",
    "below", "beneath", "behind", "before", "after", "around", "inside", "outside", "within", "into",
    "onto", "against", "towards", "toward", "beyond", "past", "through", "surrounding", "surrounded",
    "like", "than", "except", "that", "which", "who", "whose", "where", "while", "and", "or", "but",
    "is", "are", "was", "were", "be", "being", "has", "have", "located", "situated", "parked", "lying",
    "standing", "docked", "moored", "placed", "positioned", "closest", "nearest", "farthest", "furthest",
    "adjacent", "close", "opposite", "facing", "connected", "covered", "shown", "seen",
}
# Where a word puts an object: (row third, column third), None where it says nothing.
ROW = {"north": 0, "northern": 0, "top": 0, "upper": 0, "south": 2, "southern": 2, "bottom": 2, "lower": 2}
COL = {"west": 0, "western": 0, "left": 0, "east": 2, "eastern": 2, "right": 2}
MID = {"middle", "center", "centre", "central"}
COMPASS = {"northwest": ("north", "west"), "northeast": ("north", "east"), "southwest": ("south", "west"),
            "southeast": ("south", "east")}
PLACE_NOUNS = {"corner", "part", "side", "edge", "half", "area", "portion", "region", "end", "hand"}
WHOLE = {"image", "scene", "picture", "map", "photo", "view", "area", "tile"}
# Direction words that may trail a head ("the ships north of the road"): skipped when finding
# the head noun; with the place nouns, the words of a place phrase ("at the top left corner").
TRAIL = set(ROW) | set(COL) | MID | set(COMPASS) | {"side", "corner", "edge", "here", "there"}
PLACE = TRAIL | PLACE_NOUNS

# Superlatives: (what is compared, +1 the most / -1 the least); y grows southwards, x eastwards.
EXTREMES = {"largest": ("area", 1), "biggest": ("area", 1), "smallest": ("area", -1), "tiniest": ("area", -1),
             "northernmost": ("y", -1), "topmost": ("y", -1), "uppermost": ("y", -1),
             "southernmost": ("y", 1), "bottommost": ("y", 1), "lowermost": ("y", 1),
             "westernmost": ("x", -1), "leftmost": ("x", -1), "easternmost": ("x", 1), "rightmost": ("x", 1)}
# Relations to another object: (words, relation). Directions are the map's, as places are.
NEAR = (("next", "to"), ("close", "to"), ("closest", "to"), ("nearest", "to"), ("adjacent", "to"),
         ("near", "to"), ("near",), ("beside",), ("alongside",), ("nearest",), ("closest",))
ABOVE = {"above": "north", "below": "south", "beneath": "south"}
SIDES = {"north": "north", "northern": "north", "south": "south", "southern": "south", "east": "east",
          "eastern": "east", "west": "west", "western": "west", "left": "west", "right": "east",
          "northwest": "north-west", "northeast": "north-east", "southwest": "south-west",
          "southeast": "south-east"}
RELATIONS = ("near", "north", "south", "east", "west", "north-east", "north-west", "south-east", "south-west")
"""What a relation to another object may say: ``near`` ("next to", "beside") or a map direction."""
CLAUSE = {"that", "which", "who", "whose", "where", "while"}
IRREGULAR_PLURALS = {"people", "men", "women", "children", "cattle", "geese", "mice", "feet", "teeth",
                      "oxen"}
SINGULAR_S = {"gas", "bus", "lens", "canvas", "series", "species", "chassis", "news", "physics",
               "athletics", "atlas", "its", "his", "this", "yes", "plus", "thus", "as", "was", "has",
               "does", "always", "perhaps", "across", "towards", "besides", "sometimes", "aircraft"}# Colour words and the colour each names (:data:`rrsis.scene.colour.PROTOTYPES`): an object's
# colour in the head ("the white storage tank", "a dark-blue car", "the red-roofed building").
COLOUR_WORDS = {"white": "white", "black": "black", "gray": "gray", "grey": "gray", "silver": "silver",
                "red": "red", "orange": "orange", "yellow": "yellow", "green": "green", "blue": "blue",
                "brown": "brown", "purple": "purple", "violet": "purple", "pink": "pink", "cyan": "cyan",
                "turquoise": "cyan", "teal": "cyan", "whitish": "white", "greyish": "gray", "grayish": "gray",
                "silvery": "silver", "blackish": "black", "reddish": "red", "orangish": "orange",
                "yellowish": "yellow", "greenish": "green", "bluish": "blue", "blueish": "blue",
                "brownish": "brown", "purplish": "purple", "pinkish": "pink"}
COLOUR_PARTS = {"roof", "roofs", "top", "tops", "deck", "hull", "body", "surface", "colour", "color"}
"""What may carry an object's colour after "with": "the building with a red roof"."""
