"""The rules of idempotency keys apart from HTTP and storage: which keys are usable, what a
fingerprint tells apart, which answers are kept for replay."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from application.errors import ConcurrentWrite, ReadModelsBehind
from application.idempotency import MAX_KEY_LENGTH, fingerprint, keeps, key_problem

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@given(st.text(PRINTABLE, min_size=1, max_size=MAX_KEY_LENGTH))
def test_printable_ascii_keys_up_to_255_characters_are_usable(key: str) -> None:
    assert key_problem(key) is None


@given(st.text(max_size=300))
def test_a_key_is_usable_exactly_when_it_is_1_to_255_printable_ascii_characters(
    key: str,
) -> None:
    usable = 1 <= len(key) <= MAX_KEY_LENGTH and all(0x20 <= ord(c) <= 0x7E for c in key)
    assert (key_problem(key) is None) == usable


def test_each_unusable_key_says_why() -> None:
    assert key_problem("") == "must not be empty"
    assert key_problem("k" * 256) == "must be at most 255 characters"
    assert key_problem("clé") == "must be printable ASCII characters"
    assert key_problem("tab\there") == "must be printable ASCII characters"


REQUEST = st.tuples(
    st.sampled_from(["POST", "PUT"]), st.text(max_size=20), st.binary(max_size=20), st.binary()
)


@given(REQUEST, REQUEST)
def test_two_requests_share_a_fingerprint_exactly_when_they_are_the_same(
    one: tuple[str, str, bytes, bytes], other: tuple[str, str, bytes, bytes]
) -> None:
    assert (fingerprint(*one) == fingerprint(*other)) == (one == other)


@given(st.binary(min_size=1, max_size=20), st.binary(max_size=20))
def test_moving_bytes_between_query_and_body_changes_the_fingerprint(
    moved: bytes, body: bytes
) -> None:
    assert fingerprint("POST", "/p", moved, body) != fingerprint("POST", "/p", b"", moved + body)


@given(st.integers(100, 499), st.sampled_from([None, "invalid-input", "not-found", "conflict"]))
def test_successes_and_client_errors_are_kept_except_429(status: int, code: str | None) -> None:
    assert keeps(status, code) == (status != 429)


@given(st.integers(500, 599), st.sampled_from([None, "internal-error", "unavailable"]))
def test_server_errors_are_forgotten_so_the_key_may_be_tried_again(
    status: int, code: str | None
) -> None:
    assert not keeps(status, code)


def test_a_recorded_write_behind_its_read_models_is_kept_a_lost_write_race_is_not() -> None:
    assert keeps(503, ReadModelsBehind.code)  # the write stands: running it again writes twice
    assert not keeps(409, ConcurrentWrite.code)  # nothing was written: trying again is the cure
