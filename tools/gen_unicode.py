#!/usr/bin/env python3
"""gen_unicode.py - regenerate the Unicode tables that ollm.h embeds.

    apt-get install -y unicode-data          # Debian's copy of the Unicode Character Database
    python3 tools/gen_unicode.py [/usr/share/unicode] [ollm.h]

Replaces the text between the markers "BEGIN GENERATED UNICODE TABLES" and "END GENERATED UNICODE TABLES" in
ollm.h. Reads UnicodeData.txt (general category, canonical combining class, decompositions), PropList.txt
(White_Space) and DerivedNormalizationProps.txt (Full_Composition_Exclusion); the version comes from ReadMe.txt /
DerivedAge.txt. Plain python3, no third-party packages; the output is deterministic.

Tables (all sorted, binary-searched; the tokenizer caches the BMP part of the first one in a 64 KB array):
  ollm__ucat[]   start << 4 | class, one entry per run of code points in the same class (the run ends where the next
                 entry starts); classes: 0 other, 1 Lu, 2 Ll, 3 Lt, 4 Lm, 5 Lo, 6 M (Mn Mc Me), 7 N (Nd Nl No),
                 8 White_Space. These are the only distinctions the three pre-tokenizer regexes make.
  ollm__uccc[]   start << 8 | ccc for runs of equal canonical combining class (ccc 0 between runs).
  NFC data (ollm__uccc, ollm__udec) is cut at Unicode NORM_MAX_AGE = 12.1: HF tokenizers' NFC normaliser
  (unicode-normalization-alignments, a 2019 fork of unicode-normalization) predates 13.0 - it leaves
  U+11935 U+11930 uncomposed (U+11938 DIVES AKURU VOWEL SIGN O, 13.0), the only canonical decomposition added
  between 9.0 and 15.0 - so marks and decompositions assigned later are treated as it treats them (ccc 0, none).
  ollm__udec[]   cp, first, second | excluded << 21: canonical decompositions (one level; applied recursively);
                 second is 0 for singletons; excluded marks Full_Composition_Exclusion. Hangul is algorithmic.
"""
import os
import re
import sys

UCD = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ollm.h")
BEGIN = "/* BEGIN GENERATED UNICODE TABLES"
END = "/* END GENERATED UNICODE TABLES */"


def version():
    with open(os.path.join(UCD, "DerivedAge.txt"), encoding="utf-8") as f:
        m = re.search(r"DerivedAge-(\d+\.\d+\.\d+)\.txt", f.readline())
    return m.group(1) if m else "unknown"


NORM_MAX_AGE = (12, 1)


def ages():
    out = {}
    with open(os.path.join(UCD, "DerivedAge.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            rng, a = [x.strip() for x in line.split(";")]
            lo, _, hi = rng.partition("..")
            for c in range(int(lo, 16), int(hi or lo, 16) + 1):
                out[c] = tuple(int(x) for x in a.split("."))
    return out


def unicode_data():
    """Yields (cp, fields) for every assigned code point, expanding <..., First>/<..., Last> ranges."""
    first = None
    with open(os.path.join(UCD, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fl = line.rstrip("\n").split(";")
            cp = int(fl[0], 16)
            if fl[1].endswith(", First>"):
                first = cp
                continue
            if fl[1].endswith(", Last>"):
                for c in range(first, cp + 1):
                    yield c, fl
                continue
            yield cp, fl


def prop_ranges(name, prop):
    out = set()
    with open(os.path.join(UCD, name), encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            rng, p = [x.strip() for x in line.split(";")[:2]]
            if p != prop:
                continue
            a, _, b = rng.partition("..")
            for c in range(int(a, 16), int(b or a, 16) + 1):
                out.add(c)
    return out


def main():
    cls_of = {"Lu": 1, "Ll": 2, "Lt": 3, "Lm": 4, "Lo": 5, "Mn": 6, "Mc": 6, "Me": 6, "Nd": 7, "Nl": 7, "No": 7}
    cls = [0] * 0x110000
    ccc = [0] * 0x110000
    dec = {}
    age = ages()
    for cp, fl in unicode_data():
        cls[cp] = cls_of.get(fl[2], 0)
        if age.get(cp, (99,)) > NORM_MAX_AGE:
            continue
        ccc[cp] = int(fl[3])
        d = fl[5]
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            assert 1 <= len(parts) <= 2
            dec[cp] = parts
    for c in prop_ranges("PropList.txt", "White_Space"):
        assert cls[c] == 0
        cls[c] = 8
    excl = prop_ranges("DerivedNormalizationProps.txt", "Full_Composition_Exclusion")

    ucat = []
    prev = -1
    for cp in range(0x110000):
        if cls[cp] != prev:
            ucat.append(cp << 4 | cls[cp])
            prev = cls[cp]
    uccc = []
    prev = 0
    for cp in range(0x110000):
        if ccc[cp] != prev:
            uccc.append(cp << 8 | ccc[cp])
            prev = ccc[cp]
    udec = []
    for cp in sorted(dec):
        a = dec[cp][0]
        b = dec[cp][1] if len(dec[cp]) == 2 else 0
        udec += [cp, a, b | ((1 << 21) if cp in excl else 0)]

    def emit(name, vals, comment):
        lines = ["/* %s */" % comment, "static const uint32_t %s[%d] = {" % (name, len(vals))]
        row = ""
        for v in vals:
            s = "%d," % v
            if len(row) + len(s) > 118:
                lines.append(row)
                row = ""
            row += s
        lines.append(row)
        lines.append("};")
        return "\n".join(lines)

    ver = version()
    text = "\n".join([
        BEGIN + ": tools/gen_unicode.py from the Unicode Character Database %s (Debian unicode-data) */" % ver,
        "#define OLLM__UNICODE_VERSION \"%s\"" % ver,
        "#define OLLM__NFC_UNICODE_VERSION \"%d.%d (characters assigned later do not decompose and have ccc 0)\"" %
        NORM_MAX_AGE,
        emit("ollm__ucat", ucat, "start << 4 | class (0 other, 1 Lu, 2 Ll, 3 Lt, 4 Lm, 5 Lo, 6 M, 7 N, 8 White_Space)"),
        emit("ollm__uccc", uccc, "start << 8 | canonical combining class, for runs of equal class"),
        emit("ollm__udec", udec, "cp, first, second | Full_Composition_Exclusion << 21 (canonical, one level)"),
        END,
    ])
    with open(OUT, encoding="utf-8") as f:
        src = f.read()
    a = src.index(BEGIN)
    b = src.index(END) + len(END)
    src = src[:a] + text + src[b:]
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(src)
    print("%s: Unicode %s, %d category runs, %d ccc runs, %d decompositions, %d bytes of tables" %
          (OUT, ver, len(ucat), len(uccc), len(udec) // 3, len(text)))


if __name__ == "__main__":
    main()
