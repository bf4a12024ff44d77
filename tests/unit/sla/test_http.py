"""The measuring client's HTTP/1.1 response parser and request encoding."""

import pytest

from slakit.errors import SlakitError
from slakit.sla.http import ResponseParser, parse_base_url, prepare_request


def feed_all(parser, chunks):
    done = False
    for chunk in chunks:
        assert not done, "completed before all bytes arrived"
        done = parser.feed(chunk)
    return done


def test_content_length_response_split_anywhere():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    for cut in range(1, len(raw)):
        parser = ResponseParser()
        assert feed_all(parser, [raw[:cut], raw[cut:]])
        assert parser.status == 200 and parser.keep_alive


def test_chunked_response_with_trailer():
    parser = ResponseParser()
    chunks = [
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
        b"cd\r\n",
        b"0\r\n\r\n",
    ]
    assert feed_all(parser, chunks)
    assert parser.status == 201


def test_connection_close_and_body_until_eof():
    parser = ResponseParser()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial")
    assert parser.finish_at_eof()
    assert not parser.keep_alive


def test_head_and_no_content_have_no_body():
    parser = ResponseParser()
    parser.reset(no_body=True)
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    parser.reset(no_body=False)
    assert parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n")


def test_request_encoding():
    target = parse_base_url("http://127.0.0.1:8000/prefix/")
    req = prepare_request(target, "POST", "/api/v1/ai/query", {"query": "Q4?"}, {"X-A": "b"})
    head, _, body = req.raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /prefix/api/v1/ai/query HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert b"Content-Type: application/json" in head and b"X-A: b" in head
    assert body == b'{"query":"Q4?"}' and f"Content-Length: {len(body)}".encode() in head


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://x", "http://:80", "http://h:99999"])
def test_bad_base_urls(url):
    with pytest.raises(SlakitError):
        parse_base_url(url)
