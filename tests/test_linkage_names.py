"""Name comparison (linkage/names.py): every name defect of CONTRACT.md §3 agrees, different people do not.

The guard of the link stage sends an exact-ID match to the review list when ``what == 'none'``; the
tables below are its calibration. SAME: (source name, roster name, expected detail of ``explain``);
``agreement``'s ``what`` is the detail without ``format``/``variant`` (those are the same name: ``exact``,
score 1.0). DIFFERENT: pairs of different people, which must be ``none``.
"""
from __future__ import annotations

import pytest

from linkage.names import AGREE_AT, NameKeys, agreement, canonical, explain, name_keys, names_agree

SAME = [
    # --- as written
    ("张伟", "张伟", "exact"),
    ("买买提·艾力", "买买提·艾力", "exact"),
    ("Ｚhang伟", "Zhang伟", "exact"),                       # full-width letter (NFKC)
    # --- a stray space (ASCII, U+3000, no-break, trailing)
    ("张 伟", "张伟", "format"),
    ("张\u3000小明", "张小明", "format"),
    ("张小明 ", "张小明", "format"),
    ("李\u00a0娜", "李娜", "format"),
    # --- minority names: ·, •, ., a space or nothing between parts
    ("买买提•艾力", "买买提·艾力", "format"),
    ("买买提.艾力", "买买提·艾力", "format"),
    ("买买提 艾力", "买买提·艾力", "format"),
    ("买买提艾力", "买买提·艾力", "format"),
    ("阿卜杜拉・吐尔逊", "阿卜杜拉·吐尔逊", "format"),
    ("依明．司马义", "依明·司马义", "format"),
    # --- traditional characters
    ("張偉", "张伟", "variant"),
    ("劉洋", "刘洋", "variant"),
    ("陳國華", "陈国华", "variant"),
    ("鄭麗", "郑丽", "variant"),
    ("於明", "於明", "exact"),                               # 於 is a surname of its own
    # --- variant characters (异体字), also those OpenCC t2s leaves alone
    ("张峯", "张峰", "variant"),
    ("刘羣", "刘群", "variant"),
    ("王堃", "王坤", "variant"),
    ("李喆", "李哲", "variant"),
    ("陈淸", "陈清", "variant"),
    ("赵煇", "赵辉", "variant"),                              # OpenCC would give 𪸩
    # --- homophone typos (toneless pinyin), surnames in their surname reading
    ("王玮", "王伟", "homophone"),
    ("李莉", "李丽", "homophone"),
    ("张晓明", "张小明", "homophone"),
    ("陈宏", "陈红", "homophone"),
    ("善伟", "单伟", "homophone"),                            # 单 as a surname is shan
    ("增强", "曾强", "homophone"),                            # 曾 zeng
    ("谢军", "解军", "homophone"),                            # 解 xie
    ("求明", "仇明", "homophone"),                            # 仇 qiu
    ("欧华", "区华", "homophone"),                            # 区 ou
    ("嫖正", "朴正", "homophone"),                            # 朴 piao
    ("于明", "於明", "homophone"),                            # OpenCC would rewrite 於 as 于
    # --- look-alike typos (形近字), lower weight
    ("李已", "李己", "lookalike"),
    ("张末", "张未", "lookalike"),
    ("玉建国", "王建国", "lookalike"),
    ("刘戍", "刘戌", "lookalike"),
    ("王土明", "王士明", "lookalike"),
    ("刁明", "刀明", "lookalike"),
    ("侯明", "候明", "homophone"),                           # 侯/候 look alike and read alike: homophone wins
    ("徐曰明", "徐日明", "lookalike"),
    ("季华", "李华", "lookalike"),
    ("汤伟", "杨伟", "lookalike"),
    ("張末", "张未", "variant+lookalike"),                    # two defects at once
    # --- a rare character replaced by ? (or the replacement character / 〓)
    ("王?", "王䶮", "rare"),
    ("李?明", "李㛃明", "rare"),
    ("周？", "周㑇", "rare"),
    ("赵\ufffd", "赵䓖", "rare"),
    ("孙〓", "孙㐱", "rare"),
    # --- a rare character written as its pinyin
    ("王yan", "王琰", "pinyin"),
    ("王 Yan", "王琰", "pinyin"),
    ("王yan", "王䶮", "pinyin"),
    ("李Jie明", "李㛃明", "pinyin"),
    ("周 ZHOU", "周㑇", "pinyin"),
    ("王yanjie", "王䶮㛃", "pinyin"),                         # two rare characters in one run
    ("Wang Yan", "王琰", "pinyin"),                           # the whole name in pinyin
    ("Lü Ming", "吕明", "pinyin"),
    ("Shan Wei", "单伟", "pinyin"),                           # surname reading, not dan
    # --- a compound surname
    ("欧阳娜娜", "欧阳娜娜", "exact"),
    ("歐陽娜娜", "欧阳娜娜", "variant"),
]

DIFFERENT = [
    # same surname, another given name
    ("张伟", "张强"),
    ("王芳", "王静"),
    ("李建国", "李建军"),                                    # shared generation character
    ("张小明", "张小红"),
    ("陈静", "陈敏"),
    ("赵敏", "赵明"),                                        # min / ming: near, not a homophone
    ("张斌", "张兵"),                                        # bin / bing
    ("张大明", "张小明"),
    # same given name, another surname
    ("张伟", "李伟"),
    ("刘洋", "陈洋"),
    ("单伟", "丹伟"),                                        # 单 as a surname is shan, not dan
    # swapped order
    ("张伟", "伟张"),
    ("张三丰", "张丰三"),
    ("王玉", "玉王"),                                        # look-alikes, but swapped
    ("买买提·艾力", "艾力·买买提"),                          # son and father
    # a character more or less
    ("张伟", "张伟伟"),
    ("李娜", "李娜娜"),
    ("欧阳娜", "欧阳娜娜"),
    # minority names sharing a part
    ("买买提·艾力", "买买提·吐尔逊"),
    # too many weak positions to be one person's typo
    ("张伟", "章玮"),                                        # no character actually the same
    ("张晓明", "章小明"),
    # wildcards and pinyin that do not fit
    ("王?", "李䶮"),
    ("王yong", "王琰"),
    ("Zhang Wei", "李伟"),
    ("张?明", "张䶮红"),
]


@pytest.mark.parametrize("a,b,what", SAME, ids=[f"{a}~{b}" for a, b, _ in SAME])
def test_defect_agrees(a, b, what):
    score, got, detail = explain(a, b)
    assert detail == what, (a, b, score, detail)
    assert got == ("+".join(k for k in what.split("+") if k not in ("format", "variant")) or "exact")
    assert agreement(a, b) == (score, got)
    assert score >= AGREE_AT and names_agree(a, b)
    if got == "exact":
        assert score == 1.0 and canonical(a) == canonical(b)
    assert explain(b, a) == (score, got, detail)            # symmetric


@pytest.mark.parametrize("a,b", DIFFERENT, ids=[f"{a}/{b}" for a, b in DIFFERENT])
def test_different_people_disagree(a, b):
    score, what = agreement(a, b)
    assert what == "none", (a, b, score, what)
    assert score < AGREE_AT and not names_agree(a, b)
    assert agreement(b, a)[1] == "none"


def test_table_is_big_enough():
    kinds = {}
    for _, _, what in SAME:
        for k in what.split("+"):
            kinds[k] = kinds.get(k, 0) + 1
    assert all(kinds.get(k, 0) >= 3 for k in ("format", "variant", "homophone", "lookalike", "rare", "pinyin"))
    assert len(DIFFERENT) >= 15


@pytest.mark.parametrize("a,b", [("", "张伟"), (None, "张伟"), ("张伟", None), ("??", "张伟"), ("  ", "张伟")])
def test_missing(a, b):
    assert agreement(a, b) == (0.0, "missing")
    assert not names_agree(a, b)


def test_weights_order():
    """look-alike < homophone < wildcard < pinyin < variant (= the same character)."""
    lookalike, homophone, rare, pinyin, variant = (agreement(x, "王琰")[0] for x in ("玉琰", "汪琰", "王?", "王yan", "王琰 "))
    assert AGREE_AT <= lookalike < homophone < rare < pinyin < variant == 1.0


def test_canonical():
    assert canonical(" 買買提 • 艾力 ") == "买买提艾力"
    assert canonical("張\u3000偉") == "张伟"
    assert canonical("於明") == "於明"                       # not 于明
    assert canonical("张乾") == "张乾"                       # not 张干
    assert canonical("王 Yan") == "王yan"
    assert canonical("王堃") == "王坤"
    assert canonical("") == "" and canonical(None) == ""


def test_name_keys():
    assert name_keys("张伟") == NameKeys("张伟", "zhangwei", "zw")
    assert name_keys("張 偉") == name_keys("张伟")
    assert name_keys("单伟").pinyin == "shanwei"
    assert name_keys("曾志伟").pinyin == "zengzhiwei"
    assert name_keys("尉迟恭").pinyin == "yuchigong"
    assert name_keys("王玮").pinyin == name_keys("王伟").pinyin      # a homophone typo keeps the key
    assert name_keys("王 Yan").pinyin == name_keys("王琰").pinyin
    assert name_keys("买买提•艾力") == name_keys("买买提·艾力")
    assert name_keys(None) == NameKeys("", "", "")


def test_generator_defects_agree():
    """Every name defect the synthetic generator makes (synthetic/defects.py) agrees with the clean name."""
    from pathlib import Path

    import numpy as np
    import yaml

    from synthetic.defects import NAME_KINDS, NameDefects

    cfg = yaml.safe_load((Path(__file__).parents[1] / "synthetic" / "names.yaml").read_text(encoding="utf-8"))
    nd = NameDefects(cfg)
    rng = np.random.default_rng(3)
    names = ["张伟", "王国华", "刘洋", "陈静", "李芳", "杨丽", "黄勇", "赵军", "吴杰", "周明", "王琳", "李玉",
             "徐未", "汤己", "买买提·艾力", "阿依古丽·吐尔逊", "王䶮", "李㛃", "周㑇明", "郑㐱"]
    arr = np.array(names, dtype=object)
    for kind in NAME_KINDS:
        for name in arr[nd.applicable(kind, arr)]:
            for _ in range(5):
                bad = nd.apply(kind, name, rng)
                assert names_agree(bad, name), (kind, name, bad, agreement(bad, name))
