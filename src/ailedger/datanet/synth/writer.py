"""The words of the synthetic Datanet: cooking templates and vocabulary, PII, look-alikes, junk, edits.

Why templates plus vocabulary: records must read like real notes, differ enough from one another
that honest records are almost never near-copies (three to five of 36 sentence templates, each
with its own slot words), and be cheap to make (slots are drawn only when a template uses them).
PII values are valid where a checksum exists (Luhn cards, mod-97 IBANs) so that they are real
positives; look-alikes are built to fail those checks.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from typing import Any, TypeVar

from ailedger.datanet.gates.checksums import iban_check_digits, luhn_check_digit

T = TypeVar("T")


def _w(words: str) -> list[str]:
    return words.split("|")


V: dict[str, list[str]] = {
    "ing": _w("onion|garlic|carrot|potato|chicken thigh|salmon|tofu|cauliflower|aubergine|courgette|mushroom|leek"
              "|pork shoulder|beef shin|lamb neck|cabbage|fennel|squash|sweet potato|broccoli|kale|halloumi|prawn"
              "|cod fillet|duck breast|celeriac|beetroot|parsnip|tempeh|paneer|green bean|spinach|bread dough|rice"
              "|polenta|chickpea batter|pie crust|meatball mix|egg yolk|shallot"),
    "ings": _w("lentils|chickpeas|white beans|pine nuts|cumin seeds|coriander seeds|mustard seeds|almonds|walnuts"
               "|cherry tomatoes|new potatoes|spring onions|peppers|green peas|black beans|oats|capers|olives|anchovies"
               "|sesame seeds|hazelnuts|mussels|clams|noodles|dumplings|tortillas|lemons|apples|pears|plums"),
    "herb": _w("parsley|coriander|basil|dill|mint|chives|tarragon|thyme|rosemary|sage|oregano|bay|lovage|chervil"
               "|marjoram|sorrel|lemon balm|curry leaves|shiso|fenugreek"),
    "tool": _w("cast iron pan|wok|roasting tin|dutch oven|sheet pan|saucepan|griddle|skillet|stockpot|steamer basket"
               "|pressure cooker|grill pan|baking dish|frying pan|clay pot"),
    "tech": _w("roasting|braising|searing|poaching|steaming|grilling|sauteing|blanching|glazing|smoking|pickling"
               "|confiting|charring|stewing"),
    "dish": _w("curry|stew|risotto|soup|stir fry|tray bake|pasta sauce|gratin|omelette|salad|pie|tagine|chili|ragu"
               "|frittata|noodle bowl|dal|pilaf|casserole|flatbread|broth|hotpot|paella|chowder|pesto|hash|bake|laksa"
               "|gumbo|shakshuka|biryani|goulash|minestrone|pho|ramen|jambalaya|moussaka|lasagne|fishcake|dumpling"),
    "adj": _w("bright|deep|smoky|fresh|rich|light|punchy|mellow|fragrant|hearty|silky|zesty|earthy|savoury|delicate"
              "|robust|clean|warming|tangy|comforting"),
    "acid": _w("lemon juice|lime juice|sherry vinegar|cider vinegar|rice vinegar|white wine|yoghurt|tamarind"
               "|pomegranate molasses|sumac"),
    "fat": _w("butter|olive oil|ghee|duck fat|sesame oil|coconut oil|lard|brown butter|rapeseed oil|schmaltz"),
    "texture": _w("crisp|golden|flaky|tender|crunchy|glossy|chewy|caramelised"),
    "liquid": _w("stock|water|wine|cream|milk|coconut milk|pasta water|beer|cider|dashi"),
    "color": _w("golden|deep brown|amber|bronze|light gold|mahogany"),
}
_SENTENCES = _w(
    "Pat the {ing} dry before it goes into the {tool}, or it will steam instead of brown."
    "|A splash of {acid} at the end wakes up a {adj} {dish} more than extra salt does."
    "|Cook the {ing} over medium heat for about {mins} minutes, stirring only now and then."
    "|If your {dish} tastes flat, add a pinch of salt and a little {acid} before reaching for more {herb}."
    "|Let the {tool} heat fully before the {fat} goes in; a cold pan is why {ing} sticks."
    "|Cut the {ing} into even pieces so that every bite cooks at the same rate."
    "|Toast the {ings} in a dry pan until fragrant, then grind them for a {adj} finish."
    "|Rest the {dish} for {mins} minutes after cooking so the juices settle back in."
    "|Season the {ing} in layers: a little at the start, more halfway, and a final check before serving."
    "|Keep a jar of {fat} near the stove; it makes {tech} {ings} on a weeknight much faster."
    "|My grandmother always put {herb} in her {dish}, and I still think it is the secret."
    "|For a {texture} crust, press the {ing} into the {tool} and leave it alone for {mins} minutes."
    "|Bake at {temp} degrees until the edges turn {color}, usually {mins} to {mins2} minutes."
    "|Freeze leftover {ing} in small portions so a quick {dish} is never far away."
    "|Salt the cooking water until it tastes like mild broth; the {dish} will need less seasoning later."
    "|Do not crowd the {tool}: cook the {ing} in two batches if you have to."
    "|Soak the {ings} overnight, or use the quick method and simmer them for {mins} minutes."
    "|A sharp knife is safer than a dull one because it goes where you aim it, even through {ing}."
    "|Taste as you go; the gap between a {adj} {dish} and a dull one is usually acid and salt."
    "|Save the starchy water from the {ings}; a few spoonfuls make any sauce cling to the {dish}."
    "|Brown the {ing} first, then deglaze the {tool} with {liquid} to lift the flavour off the bottom."
    "|Fresh {herb} goes in at the end and dried {herb2} early, so each keeps its character."
    "|When {tech} {ing}, a lid traps steam; leave it off if you want {texture} edges."
    "|Line the tray with paper and spread the {ing} in one layer so it roasts instead of steaming."
    "|Make a double batch of {dish} on Sunday and it will feed you well into the week."
    "|Grate cold {fat} into the flour for a {texture} pastry that never turns tough."
    "|Warm the plates before serving the {dish}; it stays hot at the table far longer."
    "|Marinate the {ing} with {acid}, {herb} and a little oil for at least {mins} minutes."
    "|If the sauce splits, whisk in a spoonful of {liquid} off the heat and it usually comes back."
    "|Use {ings} that are in season; they need far less work to taste {adj}."
    "|A pinch of sugar balances the {acid} in a tomato {dish} without making it sweet."
    "|Clean as you cook, and the {tool} will be ready again by the time the {ing} is done."
    "|Finish the {dish} with a drizzle of good {fat} and a scatter of {herb}."
    "|{Ings} and {ings2} are a classic pair; stir them into a {dish} for depth."
    "|I learned {tech} from a neighbour, and now the {ing} in my {dish} never dries out."
    "|Swap half the {fat} for {liquid} and the {dish} feels lighter without losing body.")
_TITLES = _w("{Adj} {dish} in {mins} minutes|How I cook {ing} now|A better way with {ings}|Notes on {tech} {ing}"
             "|Why your {dish} needs {acid}|{Herb} and {ing}: a weeknight {dish}|The {tool} trick for {texture} {ing}"
             "|What {tech} taught me about {dish}|{Adj} {dish} with {ings}|Fixing a {adj} {dish}")
_OFF_TOPIC = _w(
    "The {part} on a {car} usually lasts about {n} thousand miles before it needs attention."
    "|Ask the garage to print the diagnostic codes before you agree to replace the {part} on the {car}."
    "|Keep {n} percent of your savings in a {account} so a surprise bill does not force you to sell {asset}."
    "|Holding {asset} inside a {account} can save more in tax than picking the right fund ever will."
    "|A {car} with a {symptom} should not go on the motorway until the {part} has been checked."
    "|Compare the annual percentage rate, not the monthly payment, when financing a {car} over {n} months."
    "|Check the {part} every {n} thousand miles and replace it if the {symptom} gets worse."
    "|A {symptom} when braking usually means the {part2} is worn; ask a mechanic to inspect the {car}."
    "|Index funds with fees under {n} basis points beat most pickers of {asset} over a decade."
    "|Rebalance the {account} every {period} so the share of {asset} does not drift from your target."
    "|Torque the wheel nuts of the {car} in a star pattern, then check them again after {n} miles."
    "|The {period}ly earnings call moved the price of {asset} more than the dividend announcement did."
    "|Top up the coolant of a {car} only when the engine is cold, and check the {part} while you are there."
    "|An overpayment of {n} percent a {period} shortens a mortgage more than most borrowers expect."
    "|If the {part} squeals on a cold start, the belt tensioner of the {car} may be failing."
    "|Spread {asset} and {asset2} across a {account} so one downturn does not sink the whole plan."
    "|A {symptom} at {n} miles an hour often points to the {part2} rather than the {part}."
    "|Fees of {n} pounds a {period} on a {account} quietly eat the returns on {asset}.")
_OFF_VOCAB = {"part": _w("brake pads|timing belt|spark plugs|air filter|alternator|clutch|fuel pump|wheel bearing"
                         "|gearbox|radiator|battery|exhaust|suspension arm|starter motor|oil pump|turbocharger"),
              "symptom": _w("grinding noise|vibration|squeal|rattle|warning light|pull to one side|knocking sound"
                            "|burning smell|slow crank|hesitation"),
              "car": _w("hatchback|van|estate car|pickup|hybrid|diesel saloon|small SUV|convertible|minivan|coupe"),
              "asset": _w("shares|index funds|bonds|gold|property|tech stocks|government gilts|dividend stocks"),
              "account": _w("savings account|stocks and shares ISA|pension pot|brokerage account|current account"
                            "|workplace pension|offset account|money market fund"),
              "period": _w("month|quarter|year|week")}
_OFF_VOCAB.update(part2=_OFF_VOCAB["part"], asset2=_OFF_VOCAB["asset"])
_POOLS: dict[str, list[str]] = {
    **V, **{k.capitalize(): [w.capitalize() for w in V[k]] for k in ("adj", "herb", "ings")},
    "ings2": V["ings"], "herb2": V["herb"], "mins": [str(m) for m in range(3, 46)],
    "mins2": [str(m) for m in range(46, 91)], "temp": [str(t) for t in range(150, 250, 10)],
}
# Openers and closers make two records that happen to use the same templates read differently
# (their Jaccard stays far below a near-copy's); the empty entries leave some sentences bare.
_OPENERS = _w(
    "|||||||In my kitchen, |Honestly, |On busy nights, |When cooking for friends, |A tip from my aunt: "
    "|After years of trial and error, |Trust me, |For the best results, |If you have the time, |Even on a budget, "
    "|As a rule, |My advice: |Once you try it, |Before you start, |From experience, |Every cook learns this: "
    "|Small thing, but |Weeknight or weekend, |In a small flat kitchen, |My partner taught me this: ")
_CLOSERS = _w(
    "|||||||, and it works every time.|, at least in my experience.|, which also saves on washing up."
    "|; my kids now ask for it weekly.|, as a chef friend keeps telling me.|; you will taste the difference."
    "|, even with cheap ingredients.|, and nobody at the table complains.|; it took me years to learn that."
    "|, which matters more than the recipe says.|, so plan for it.|; it is worth the extra step."
    "|, whatever the cookbook claims.|, especially in winter.|; I wish I had known sooner."
    "|, and the leftovers are better still.|, which keeps the flavour clean.|; try it once and see.")


def _lowered(template: str) -> str:
    """The template as it reads after an opener: first letter lowercase (but "I" stays "I")."""
    if template.startswith("{"):
        return "{" + template[1].lower() + template[2:]
    return template if template.startswith("I ") else template[0].lower() + template[1:]


_AFTER_OPENER = [_lowered(t) for t in _SENTENCES]
_OFF_AFTER_OPENER = [_lowered(t) for t in _OFF_TOPIC]
# Off-topic records get openers and closers that say nothing about cooking.
_NEUTRAL_OPENERS = _w("||||||Honestly, |Trust me, |As a rule, |My advice: |From experience, |Small thing, but ")
_NEUTRAL_CLOSERS = _w("||||||, at least in my experience.|; it took me years to learn that.|, so plan for it."
                      "|; it is worth the extra step.|; I wish I had known sooner.|; try it once and see.")




def _fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


# Each template's slot names, so a record draws only the words its sentences use.
_SENTENCE_FIELDS = [_fields(t) + _fields(_lowered(t)) for t in _SENTENCES]
_TITLE_FIELDS = [_fields(t) for t in _TITLES]


_FILLERS = _w("really|just|also|always|simply|gently|then|still|even|quite")
_NAMES = _w("jane|omar|li|maria|tom|aiko|pierre|fatima|sven|ana|raj|chloe")
_DOMAINS = _w("example.com|mail.example.org|gmail.com|outlook.com|proton.me|yahoo.co.uk")
_ALNUM = string.ascii_letters + string.digits
_B64 = _ALNUM + "+/"
JUNK = ("repetitive", "symbols", "too_short", "invisible", "not_text")
PII = ("email", "phone", "card", "iban", "api_key", "private_key")
LOOKALIKES = ("date", "time", "version", "order_number", "uuid", "ip_version", "short_digits")


class Writer:
    """The text-making half: sentences, PII values, look-alikes and junk, all from one seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, pool: Sequence[T]) -> T:
        return pool[int(self.rng.random() * len(pool))]

    def digits(self, n: int) -> str:
        return "".join(self.rng.choices(string.digits, k=n))

    def cooking(self) -> dict[str, Any]:
        """A title and two or three distinct sentences (about 300 characters), some with an opener or closer."""
        rnd = self.rng.random
        count = 2 + int(rnd() * 2)
        chosen: list[int] = []
        while len(chosen) < count:
            i = int(rnd() * len(_SENTENCES))
            if i not in chosen:
                chosen.append(i)
        title = int(rnd() * len(_TITLES))
        needed = {f for i in chosen for f in _SENTENCE_FIELDS[i]}.union(_TITLE_FIELDS[title])
        slots = {f: _POOLS[f][int(rnd() * len(_POOLS[f]))] for f in sorted(needed)}
        text = " ".join(self._dress(_SENTENCES[i], _AFTER_OPENER[i]).format_map(slots) for i in chosen)
        return {"title": _TITLES[title].format_map(slots), "text": text}

    def _dress(self, bare: str, after_opener: str, openers: Sequence[str] = _OPENERS,
               closers: Sequence[str] = _CLOSERS) -> str:
        rnd = self.rng.random
        opener, closer = openers[int(rnd() * len(openers))], closers[int(rnd() * len(closers))]
        body = opener + after_opener if opener else bare
        return body[:-1] + closer if closer else body

    def off_topic(self) -> dict[str, Any]:
        s = {k: self.pick(v) for k, v in _OFF_VOCAB.items()} | {"n": str(self.rng.randint(2, 90))}
        chosen = self.rng.sample(range(len(_OFF_TOPIC)), self.rng.randint(2, 3))
        text = " ".join(self._dress(_OFF_TOPIC[i], _OFF_AFTER_OPENER[i], _NEUTRAL_OPENERS, _NEUTRAL_CLOSERS)
                        .format_map(s) for i in chosen)
        return {"title": self.pick(_w("Car care notes|Money matters|Garage diary|Investing basics")), "text": text}

    def pii(self, kind: str) -> str:
        r, d = self.rng, self.digits
        if kind == "email":
            return f"You can reach me at {self.pick(_NAMES)}.{self.pick(_NAMES)}{d(2)}@{self.pick(_DOMAINS)} anytime."
        if kind == "phone":
            a, b, c = str(r.randint(201, 989)), d(3), d(4)
            fmt = self.pick([f"+1 {a} {b} {c}", f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+44 20 {c} {d(4)}",
                             f"020 {c} {d(4)}", f"07{d(3)} {d(6)}", f"+49 30 {d(8)}",
                             f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"+1{a}{b}{c}"])
            return f"Call me on {fmt} if the recipe is unclear."
        if kind == "card":
            prefix, length = self.pick([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16), ("2221", 16)])
            body = prefix + d(length - len(prefix) - 1)
            num = body + luhn_check_digit(body)
            sep = self.pick(["", " ", "-"])
            groups = [num[:4], num[4:10], num[10:]] if length == 15 else [num[i:i + 4] for i in range(0, 16, 4)]
            return f"I paid for the knife set with card {sep.join(groups)}, expiry 09/27."
        if kind == "iban":
            country, bban = self.pick([("DE", d(18)), ("GB", "WEST" + d(14)), ("FR", d(23)), ("NL", "ABNA" + d(10)),
                                       ("ES", d(20))])
            iban = country + iban_check_digits(country, bban) + bban
            shown = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if r.random() < 0.5 else iban
            return f"Send the money for the cooking class to {shown}."
        if kind == "api_key":
            def rand(alphabet: str, k: int) -> str:
                return "".join(r.choices(alphabet, k=k))

            key = self.pick([f"AKIA{rand(string.ascii_uppercase + string.digits, 16)}", f"ghp_{rand(_ALNUM, 36)}",
                             f"sk-proj-{rand(_ALNUM, 32)}", f"xoxb-{d(12)}-{d(12)}-{rand(_ALNUM, 24)}",
                             f"AIza{rand(_ALNUM + '_-', 35)}", f"api_key={rand(_ALNUM, 24)}"])
            return f"My recipe app login is {key} so please keep it private."
        body = "\n".join("".join(r.choices(_B64, k=64)) for _ in range(3))
        return f"Keep this private:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"

    def lookalike(self, kind: str) -> str:
        r, d = self.rng, self.digits
        if kind == "date":
            y, m, day = r.randint(2015, 2026), r.randint(1, 12), r.randint(1, 28)
            return f"I first made this on {y}-{m:02d}-{day:02d} and again on {day:02d}/{m:02d}/{y}."
        if kind == "time":
            return f"Set a timer at {r.randint(10, 23)}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d} and check at " \
                   f"{r.randint(10, 23)}:{r.randint(0, 59):02d}."
        if kind == "version":
            return f"My recipe app, version v{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)} on build " \
                   f"10.0.{r.randint(10000, 22000)}.{r.randint(1, 999)}, keeps these notes."
        if kind == "order_number":
            prefix = self.pick(["4", "5", "37", "6011"])
            body = prefix + d(15 - len(prefix))
            good = luhn_check_digit(body)
            num = body + str((int(good) + 1 + int(r.random() * 9)) % 10)
            shown = " ".join(num[i:i + 4] for i in range(0, 16, 4)) if r.random() < 0.5 else num
            return f"The pan arrived with order number {shown}, well packed."
        if kind == "uuid":
            h = "".join(r.choices("0123456789abcdef", k=32))
            return f"The shop lists it as {h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]} in their catalogue."
        if kind == "ip_version":
            return f"The thermometer runs firmware {r.randint(1, 9)}.{r.randint(10, 99)}.{r.randint(100, 250)}.{d(2)}."
        return f"We cooked for table {r.randint(1, 30)} in room {d(5)} at the {r.randint(2, 9)}th floor kitchen."

    def junk(self, kind: str) -> dict[str, Any]:
        r = self.rng
        if kind == "repetitive":
            phrase = self.pick(_w("great tip|so good|must try|best recipe ever|love this"))
            text = " ".join([phrase] * r.randint(8, 20))
        elif kind == "symbols":
            text = " ".join("".join(r.choices("#$%&*!?@~^+=<>|", k=r.randint(3, 8))) for _ in range(r.randint(8, 20)))
        elif kind == "too_short":
            text = self.pick(_w("nice|ok thanks|yum!!|lol|good|+1|wow")) + " " + self.digits(2)
        elif kind == "invisible":
            words = self.cooking()["text"].split(" ")
            for _ in range(r.randint(1, 4)):
                i = int(r.random() * len(words))
                words[i] = words[i][:2] + self.pick(["\u200b", "\u202e", "\u2066", "\x07"]) + words[i][2:]
            text = " ".join(words)
        else:
            text = "data: " + "".join(r.choices(_B64, k=r.randint(200, 600))) + "=="
        return {"title": self.pick(_w("tip|recipe|notes|update")), "text": text}



def insert_sentence(record: dict[str, Any], sentence: str, rng: random.Random) -> dict[str, Any]:
    parts = record["text"].split(". ")
    parts.insert(int(rng.random() * (len(parts) + 1)), sentence.rstrip("."))
    return {"title": record["title"], "text": ". ".join(parts)}


def edit(text: str, w: Writer) -> str:
    """One small edit of the kind a spammer makes to dodge exact-duplicate checks."""
    words = text.split(" ")
    i = int(w.rng.random() * len(words))
    op = int(w.rng.random() * 6)
    if op == 0:
        words[i] = words[i].upper() if w.rng.random() < 0.5 else words[i] + "!"
    elif op == 1:
        words[i] = w.pick(_FILLERS)
    elif op == 2 and len(words) > 8:
        del words[i]
    elif op == 3:
        words.insert(i, w.pick(_FILLERS))
    elif op == 4 and i + 1 < len(words):
        words[i], words[i + 1] = words[i + 1], words[i]
    else:
        return w.pick(_w("Tip: |Quick one: |Reposting: ")) + text
    return " ".join(words)
