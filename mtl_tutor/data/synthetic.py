"""A small synthetic sst / quora / sts corpus whose gradient conflict is set by one knob.

Every sentence is built from real English words: content nouns from one of six topics (food,
film, travel, music, sport, school) and two adjective slots that carry its *polarity*:

    label y      0            1             2             3             4
    adjectives   neg, neg     neg, neutral  neutral x 2   pos, neutral  pos, pos

(positive: great, lovely, ...; negative: awful, dull, ...; neutral: ordinary, plain, ...).

- sst: three random nouns and the adjectives of a uniform label y in 0..4; y is the label.
  The nouns carry no signal.
- quora: question pairs of four nouns each. Duplicates (half the pairs) have the same four nouns
  in another order and another template; non-duplicates share 0, 1 or 2 of them (the others come
  from the same topic, so the topic alone gives nothing away). Label 1.0 / 0.0.
- sts: pairs of five nouns each, sharing m = 0..5 of them (uniform); similarity
  m + u, u ~ U(-0.4, 0.4), clipped to [0, 5] and written with one decimal.

Every pair sentence also has a polarity, positive (y in 3, 4) or negative (y in 0, 1); whether
the two sentences of a pair agree in polarity is where the tasks meet. Call a pair *close* when
it is a duplicate (quora) or m >= 3 (sts). Each pair is independently *aligned* with probability
1 - ``conflict``: its sentences agree in polarity exactly when it is close. Otherwise polarity
agreement is a fair coin, unrelated to the label. So P(agree | close) = 1 - conflict / 2 and
P(agree | not close) = conflict / 2.

Why this sets gradient conflict: SST needs the shared sentence embedding to separate positive
from negative sentences. At conflict = 0 that same polarity feature tells the pair heads whether
a pair is close, so all three tasks pull the shared encoder the same way. As conflict grows,
polarity turns into noise for the pair tasks: it adds variance to the very pair features their
heads read (|u - v|, u * v, a cosine), so their gradients push the encoder to suppress the
polarity directions that the SST gradient pushes it to strengthen. At conflict = 1 polarity is
pure noise to Quora and STS. (Anti-correlating instead, close pairs always of opposite polarity,
would not do this: a head on |u - v| just learns the reversed rule, and polarity helps every task
again.) The pair labels follow the shared nouns alone, so every task stays fully learnable at
every setting of the knob.

Vocabulary of 90 words, each one WordPiece token of the BERT uncased vocabulary; sentences of
13-21 tokens ([CLS] and [SEP] included); 600 / 200 / 100 rows per task by default, so that a
CPU demo with MiniLM-L6 trains an epoch in minutes.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from .tasks import MULTITASK, get_task

TOPICS = {
    "food": "soup bread cheese pasta salad coffee cake rice chicken pizza tea fruit",
    "film": "movie actor script scene camera director ending cast story dialogue sequel screen",
    "travel": "hotel train beach airport museum city village bridge harbor island road map",
    "music": "song guitar piano singer band album concert drum violin choir melody radio",
    "sport": "game team coach stadium ball match player race goal court season bike",
    "school": "teacher lesson student book class exam library pencil lecture essay desk campus",
}
NOUNS = {topic: words.split() for topic, words in TOPICS.items()}
POSITIVE = "great lovely superb brilliant wonderful excellent".split()
NEGATIVE = "awful terrible dull boring horrible dreadful".split()
NEUTRAL = "ordinary average typical plain standard usual".split()
ADJECTIVE_KINDS = {0: (NEGATIVE, NEGATIVE), 1: (NEGATIVE, NEUTRAL), 2: (NEUTRAL, NEUTRAL),
                   3: (POSITIVE, NEUTRAL), 4: (POSITIVE, POSITIVE)}

# {n} are nouns, {a} adjectives, filled left to right.
SST_TEMPLATES = [
    "the {n} , the {n} and the {n} were {a} and {a} .",
    "a {a} {n} , a {a} {n} and a {n} .",
    "i found the {n} {a} , and the {n} with the {n} {a} .",
]
QUESTION_TEMPLATES = [
    "why were the {n} , the {n} , the {n} and the {n} so {a} and {a} ?",
    "is it true that the {n} , {n} , {n} and {n} are {a} and {a} ?",
    "what makes a {a} {n} , a {n} , a {n} and a {a} {n} ?",
]
STATEMENT_TEMPLATES = [
    "the {n} , the {n} , the {n} , the {n} and the {n} were {a} and {a} .",
    "a {a} {n} and a {a} {n} near the {n} , the {n} and the {n} .",
]
QUESTION_NOUNS, STATEMENT_NOUNS, SST_NOUNS = 4, 5, 3
SPLITS = ("train", "dev", "test")


def adjectives(rng: random.Random, label: int) -> list[str]:
    """The two adjectives of polarity label ``label`` (0..4), in random order."""
    words = [rng.choice(kind) for kind in ADJECTIVE_KINDS[label]]
    rng.shuffle(words)
    return words


def fill(template: str, nouns: list[str], adjs: list[str]) -> str:
    """The template with its slots filled in order ("a" becomes "an" before a vowel)."""
    nouns, adjs = iter(nouns), iter(adjs)
    words = [next(nouns) if w == "{n}" else next(adjs) if w == "{a}" else w
             for w in template.split()]
    after = [*words[1:], ""]
    return " ".join("an" if w == "a" and nxt[:1] in tuple("aeiou") else w
                    for w, nxt in zip(words, after, strict=True))


def polar_label(rng: random.Random, positive: bool) -> int:
    return rng.choice((3, 4) if positive else (0, 1))


def pair_polarities(rng: random.Random, close: bool, conflict: float) -> tuple[int, int]:
    """Polarity labels of a pair's sentences: they agree iff ``close`` when the pair is aligned
    (probability 1 - conflict), by a coin flip otherwise."""
    agree = close if rng.random() >= conflict else rng.random() < 0.5
    positive = rng.random() < 0.5
    return polar_label(rng, positive), polar_label(rng, positive == agree)


def pair_nouns(rng: random.Random, count: int, shared: int) -> tuple[list[str], list[str]]:
    """Two noun lists of one topic, ``count`` long, ``shared`` nouns in common, each shuffled."""
    pool = rng.sample(NOUNS[rng.choice(list(NOUNS))], 2 * count - shared)
    a, b = pool[:count], pool[:shared] + pool[count:]
    rng.shuffle(a)
    rng.shuffle(b)
    return a, b


def sst_row(rng: random.Random) -> tuple[list[str], str]:
    label = rng.randrange(5)
    nouns = rng.sample(NOUNS[rng.choice(list(NOUNS))], SST_NOUNS)
    return [fill(rng.choice(SST_TEMPLATES), nouns, adjectives(rng, label))], str(label)


def quora_row(rng: random.Random, conflict: float) -> tuple[list[str], str]:
    duplicate = rng.random() < 0.5
    shared = QUESTION_NOUNS if duplicate else rng.randrange(3)
    nouns_a, nouns_b = pair_nouns(rng, QUESTION_NOUNS, shared)
    template_a, template_b = rng.sample(QUESTION_TEMPLATES, 2)
    pol_a, pol_b = pair_polarities(rng, duplicate, conflict)
    texts = [fill(template_a, nouns_a, adjectives(rng, pol_a)),
             fill(template_b, nouns_b, adjectives(rng, pol_b))]
    return texts, "1.0" if duplicate else "0.0"


def sts_row(rng: random.Random, conflict: float) -> tuple[list[str], str]:
    shared = rng.randrange(STATEMENT_NOUNS + 1)
    nouns_a, nouns_b = pair_nouns(rng, STATEMENT_NOUNS, shared)
    pol_a, pol_b = pair_polarities(rng, shared >= 3, conflict)
    texts = [fill(rng.choice(STATEMENT_TEMPLATES), nouns, adjectives(rng, pol))
             for nouns, pol in ((nouns_a, pol_a), (nouns_b, pol_b))]
    similarity = min(5.0, max(0.0, shared + rng.uniform(-0.4, 0.4)))
    return texts, f"{similarity:.1f}"


ROW_MAKERS = {"sst": lambda rng, conflict: sst_row(rng), "quora": quora_row, "sts": sts_row}


def write_split(path: Path, task: str, split: str, rows: int, conflict: float, seed: int) -> None:
    rng = random.Random(f"mtl-tutor synthetic corpus/{seed}/{task}/{split}")
    spec = get_task(task)
    labelled = split != "test"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["", *(spec.columns if labelled else spec.columns[:-1])])
        for index in range(rows):
            texts, label = ROW_MAKERS[task](rng, conflict)
            row_id = f"{rng.getrandbits(100):025x}"
            writer.writerow([index, row_id, *texts, *([label] if labelled else [])])


def write_synthetic_corpus(directory: str | Path, *, n_train: int = 600, n_dev: int = 200,
                           n_test: int = 100, conflict: float = 0.5, seed: int = 0) -> Path:
    """Write ``{sst,quora,sts}-{train,dev,test}.csv`` (test without labels) into ``directory``.

    conflict: in [0, 1], the probability that a pair's polarity agreement is a coin flip rather
      than a copy of its label (see the module docstring). Same arguments, same bytes.
    """
    sizes = {"train": n_train, "dev": n_dev, "test": n_test}
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"n_{name} must be a positive integer, got {size!r}")
    if not 0.0 <= conflict <= 1.0:
        raise ValueError(f"conflict must lie in [0, 1], got {conflict!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for task in MULTITASK:
        for split in SPLITS:
            write_split(directory / f"{task}-{split}.csv", task, split, sizes[split],
                        float(conflict), seed)
    return directory
