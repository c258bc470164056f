from __future__ import annotations

import itertools
import os
import secrets as random_secrets
import time
from collections.abc import Iterable, Sequence
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from ferrous.agent.masking import MIN_LENGTH, REPLACEMENT, LogMasker, mask_patterns

SECRET = "s3cr3t-t0ken"


def reference(text: bytes, patterns: Iterable[bytes]) -> bytes:
    """The whole log masked byte by byte: every occurrence's bytes, runs as one [MASKED]."""
    covered = [False] * len(text)
    for pattern in patterns:
        at = text.find(pattern)
        while at >= 0:
            covered[at : at + len(pattern)] = [True] * len(pattern)
            at = text.find(pattern, at + 1)
    out = bytearray()
    i = 0
    while i < len(text):
        if covered[i]:
            out += REPLACEMENT
            while i < len(text) and covered[i]:
                i += 1
        else:
            out.append(text[i])
            i += 1
    return bytes(out)


def stream(masker: LogMasker, chunks: Iterable[bytes]) -> bytes:
    out = bytearray()
    for chunk in chunks:
        out += masker.feed(chunk)
        assert masker.held <= max(masker.longest - 1, 0)
    return bytes(out + masker.flush())


def split(text: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def test_a_whole_secret_is_masked() -> None:
    masker = LogMasker([SECRET])
    assert stream(masker, [b"token is s3cr3t-t0ken, ok\n"]) == b"token is [MASKED], ok\n"


def test_without_secrets_chunks_pass_through_untouched() -> None:
    masker = LogMasker([])
    chunk = b"s3cr3t-t0ken\n" * 3
    assert not masker.active
    assert masker.feed(chunk) is chunk
    assert masker.flush() == b""


def test_only_a_possible_beginning_of_a_secret_is_held_back() -> None:
    masker = LogMasker([SECRET])
    assert masker.feed(b"line\n") == b"line\n"
    assert masker.feed(b"the token: s3cr") == b"the token: "
    assert masker.held == 4
    assert masker.feed(b"ew") == b"s3crew"  # not the secret after all: released at once
    assert masker.feed(b" s3cr3t-t0k") == b" "
    assert masker.flush() == b"s3cr3t-t0k"  # the stream ended before the secret did


def test_a_secret_split_at_every_position_of_two_chunks() -> None:
    text = b"a s3cr3t-t0ken b s3cr3t-t0kens3cr3t-t0ken c\n"
    expected = b"a [MASKED] b [MASKED] c\n"
    for cut in range(len(text) + 1):
        assert stream(LogMasker([SECRET]), split(text, [cut])) == expected, cut


def test_a_secret_split_at_every_pair_of_positions_of_three_chunks() -> None:
    text = b"xs3cr3t-t0ken s3cr3t-s3cr3t-t0ken\n"
    expected = b"x[MASKED] s3cr3t-[MASKED]\n"
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1):
            chunks = split(text, [first, second])
            assert stream(LogMasker([SECRET]), chunks) == expected, (first, second)


def test_a_secret_fed_one_byte_at_a_time() -> None:
    text = b"p=s3cr3t-t0ken&q=s3cr3t-t0ke\n"
    chunks = [text[i : i + 1] for i in range(len(text))]
    assert stream(LogMasker([SECRET]), chunks) == b"p=[MASKED]&q=s3cr3t-t0ke\n"


def test_url_encoded_forms_are_masked() -> None:
    value = "p@ss word/with&more=stuff"
    forms = [value, quote(value, safe=""), quote(value), quote_plus(value)]
    assert len(set(forms)) == 4
    for form in forms:
        text = f"git clone https://u:{form}@example.com/x?t={form}\n".encode()
        masked = stream(LogMasker([value]), split(text, [len(text) // 2]))
        assert masked == b"git clone https://u:[MASKED]@example.com/x?t=[MASKED]\n", form


def test_utf8_secrets_are_masked_as_their_bytes() -> None:
    value = "clé-secrète-ü"
    text = f"[{value}] [{quote(value, safe='')}]\n".encode()
    for cut in range(len(text) + 1):
        assert stream(LogMasker([value]), split(text, [cut])) == b"[[MASKED]] [[MASKED]]\n"


def test_the_longest_of_two_secrets_sharing_a_prefix_wins() -> None:
    short, long = "abcdefgh", "abcdefgh-ijkl"
    text = b"1 abcdefgh-ijkl 2 abcdefgh-ij 3 abcdefgh\n"
    expected = b"1 [MASKED] 2 [MASKED]-ij 3 [MASKED]\n"
    for cut in range(len(text) + 1):
        assert stream(LogMasker([short, long]), split(text, [cut])) == expected, cut


def test_overlapping_secrets_leave_no_tail_in_the_clear() -> None:
    text = b"<abcdXYZWefgh>\n"  # "abcdXYZW" and "XYZWefgh" share XYZW
    for cut in range(len(text) + 1):
        masked = stream(LogMasker(["abcdXYZW", "XYZWefgh"]), split(text, [cut]))
        assert masked == b"<[MASKED]>\n", cut


def test_a_masked_tail_that_may_begin_another_secret_stays_masked() -> None:
    # "BBBB" ends the first secret and may begin the second: it is held, known to be secret,
    # through chunks that keep it undecided, and never comes out in the clear.
    masker = LogMasker(["aaaaBBBB", "BBBBcccccc"])
    assert masker.feed(b"aaaaBBBB") == b"[MASKED]"
    assert masker.feed(b"cc") == b""
    assert masker.feed(b"c") == b""
    assert masker.feed(b"x\n") == b"cccx\n"
    assert stream(LogMasker(["aaaaBBBB", "BBBBcccccc"]), [b"aaaaBBBB", b"ccc", b"ccc"]) == (
        b"[MASKED]"
    )


def test_repeated_and_periodic_occurrences_become_one_mask() -> None:
    assert stream(LogMasker([SECRET]), [b"s3cr3t-t0ken" * 3 + b"\n"]) == b"[MASKED]\n"
    text = b"x" + b"0" * 30 + b"y\n"
    for cut in range(len(text) + 1):
        assert stream(LogMasker(["0000"]), split(text, [cut])) == b"x[MASKED]y\n"


def test_multi_line_secrets_are_masked_whole_and_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nAAAAbbbbCCCC\nddddEEEE\n-----END KEY-----"
    whole = f"key:\n{key}\n".encode()
    assert stream(LogMasker([key]), split(whole, [20, 31])) == b"key:\n[MASKED]\n"
    crlf = key.replace("\n", "\r\n").encode()
    masked = stream(LogMasker([key]), [crlf])
    assert masked == b"[MASKED]\r\n[MASKED]\r\n[MASKED]\r\n[MASKED]"


def test_values_too_short_to_mask_are_counted_not_masked() -> None:
    masker = LogMasker(["abc", "", "1", "abcd"])
    assert masker.too_short == 2  # "" is no value at all
    assert stream(masker, [b"abc abcd\n"]) == b"abc [MASKED]\n"
    assert MIN_LENGTH == 4


def test_mask_and_mask_text_do_not_touch_the_stream() -> None:
    masker = LogMasker([SECRET])
    assert masker.feed(b"s3cr3t") == b""
    assert masker.mask_text("url https://x:s3cr3t-t0ken@h") == "url https://x:[MASKED]@h"
    assert masker.feed(b"-t0ken\n") == b"[MASKED]\n"


def test_a_custom_replacement() -> None:
    masker = LogMasker([SECRET], replacement=b"***")
    assert stream(masker, [b"s3cr3t-t0ken!\n"]) == b"***!\n"


def test_big_chunks_take_the_prefilter_path_and_still_mask_at_their_edges() -> None:
    filler = b"compiling module foo/bar.py ... ok\n" * 300
    text = b"s3cr3t-t0ken" + filler + b"s3cr3t-t0ken" + filler + b"s3cr3t-t0ken"
    expected = b"[MASKED]" + filler + b"[MASKED]" + filler + b"[MASKED]"
    for cut in (5, len(filler) + 5, len(filler) + 15, len(text) - 3):
        assert stream(LogMasker([SECRET]), split(text, [cut])) == expected, cut


def test_a_long_secret_does_not_make_each_chunk_expensive() -> None:
    pem = "\n".join(random_secrets.token_urlsafe(48) for _ in range(40))  # ~2.6 KB
    masker = LogMasker([pem])
    start = time.perf_counter()
    for _ in range(20_000):
        masker.feed(b"a line of output ending in a newline\n")
    assert masker.held == 0
    assert time.perf_counter() - start < 2.0


def test_throughput_sanity() -> None:
    values = [random_secrets.token_urlsafe(24) + "/+=&" for _ in range(20)]
    masker = LogMasker(values)
    line = b"2024-01-01 INFO compiling module foo/bar.py with flags -O2 -Wall ... ok\n"
    chunk = line * ((1 << 20) // len(line))
    planted = chunk[:1000] + values[3].encode() + chunk[1000:]
    chunks = [chunk] * 15 + [planted]
    start = time.perf_counter()
    out = b"".join(masker.feed(c) for c in chunks) + masker.flush()
    elapsed = time.perf_counter() - start
    assert out.count(REPLACEMENT) == 1
    assert elapsed < 5.0, f"16 MiB masked in {elapsed:.2f} s"


def test_random_bytes_pass_unchanged_when_no_secret_is_in_them() -> None:
    data = os.urandom(1 << 16).replace(b"Z", b"")  # no secret can occur: they all hold a Z
    masker = LogMasker(["ZZZZ-secret", "another-Zecret"])
    assert stream(masker, split(data, [100, 5000, 40_000])) == data


alphabet = st.sampled_from("ab-/ \n")
secret_values = st.text(alphabet=st.sampled_from("ab-/ "), min_size=4, max_size=9)


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[str], bytes, list[int]]:
    values = draw(st.lists(secret_values, min_size=1, max_size=3))
    patterns = mask_patterns(values)[0]
    pieces = draw(
        st.lists(
            st.one_of(
                st.sampled_from(patterns),
                st.sampled_from(patterns).map(lambda p: p[: len(p) // 2]),
                st.text(alphabet=alphabet, max_size=6).map(str.encode),
            ),
            max_size=16,
        )
    )
    text = b"".join(pieces)
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=8))
    return values, text, cuts


@settings(max_examples=1000, deadline=None)
@given(logs())
def test_streaming_equals_masking_the_whole_log(case: tuple[list[str], bytes, list[int]]) -> None:
    values, text, cuts = case
    masker = LogMasker(values)
    expected = reference(text, mask_patterns(values)[0])
    assert masker.mask(text) == expected
    masked = stream(masker, split(text, cuts))
    assert masked == expected
    for pattern in mask_patterns(values)[0]:
        assert pattern not in masked
