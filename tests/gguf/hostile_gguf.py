#!/usr/bin/env python3
"""Writes the small hand-made GGUF files some tests need, byte for byte, at test time.

usage: hostile_gguf.py NAME OUT_PATH
  invalid-utf8          a name, a key, a string value and a tensor name that are not UTF-8 (a
                        Latin-1 byte, an overlong form, a surrogate, a cut sequence); one F32 tensor
  vocab-30000-cjk       a gpt2 vocabulary whose first token is 30000 CJK characters: the fuzz input
                        that once asked the tokenizer for 2.9 GB (defect 4 of issue 16)

The GGUF writer of the library cannot make them: it writes only well-formed files.
"""
import struct
import sys

STRING, UINT32, ARRAY = 8, 4, 9
F32 = 0
ALIGNMENT = 32


def gguf_string(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def key_value(key: bytes, kind: int, value: bytes) -> bytes:
    return gguf_string(key) + struct.pack("<I", kind) + value


def string_value(raw: bytes) -> bytes:
    return gguf_string(raw)


def string_array(items) -> bytes:
    return struct.pack("<IQ", STRING, len(items)) + b"".join(gguf_string(s) for s in items)


def gguf(kvs, tensors=(), data=b"") -> bytes:
    """A GGUF v3 file: key-value pairs (already encoded), tensor infos (name, dims, type) of
    tensors laid out one after the other from offset 0, then the aligned data."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    offset = 0
    for name, dims, kind, size in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", kind, offset)
        offset += size
    if data:
        out += b"\0" * (-len(out) % ALIGNMENT) + data
    return out


def invalid_utf8() -> bytes:
    kvs = [
        key_value(b"general.architecture", STRING, string_value(b"llama")),
        key_value(b"general.name", STRING, string_value(b"caf\xe9 \xff")),
        key_value(b"llama.block_count", UINT32, struct.pack("<I", 1)),
        key_value(b"llama.odd\xc0\xafkey", STRING, string_value(b"\xed\xa0\x80 surrogate, \xf0\x9f\x98\x80 fine")),
    ]
    weights = struct.pack("<4f", 1, 1, 1, 1)
    return gguf(kvs, [(b"blk.0.attn_norm\xe2\x82.weight", [4], F32, len(weights))], weights)


def vocab_30000_cjk() -> bytes:
    kvs = [
        key_value(b"tokenizer.ggml.model", STRING, string_value(b"gpt2")),
        key_value(b"tokenizer.ggml.pre", STRING, string_value(b"default")),
        key_value(b"tokenizer.ggml.tokens", ARRAY, string_array(["\u4e00".encode() * 30000, b"a", b"b"])),
        key_value(b"tokenizer.ggml.merges", ARRAY, string_array([b"a b"])),
    ]
    return gguf(kvs)


FILES = {"invalid-utf8": invalid_utf8, "vocab-30000-cjk": vocab_30000_cjk}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in FILES:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(FILES)}}} OUT_PATH")
    with open(sys.argv[2], "wb") as f:
        f.write(FILES[sys.argv[1]]())
