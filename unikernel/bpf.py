"""A classic-BPF assembler for seccomp filters: labels in, `struct sock_filter` bytes out.

Seccomp runs classic BPF over `struct seccomp_data` (linux/seccomp.h):
`nr` at offset 0, `arch` at 4, `instruction_pointer` at 8, `args[6]` (u64)
from 16. Conditional jumps carry 8-bit offsets, so the assembler refuses a
program whose forward jump would not fit rather than emit a wrong one.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

# linux/bpf_common.h
BPF_LD = 0x00
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_RET = 0x06
BPF_W = 0x00
BPF_ABS = 0x20
BPF_AND = 0x50
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_K = 0x00

# linux/seccomp.h: struct seccomp_data
OFFSET_NR = 0
OFFSET_ARCH = 4
BPF_MAXINSNS = 4096


def offset_arg_low(index: int) -> int:
    """Offset of the low 32 bits of args[index]; both supported arches are little-endian."""
    if not 0 <= index < 6:
        raise ValueError(f"a system call has six arguments, not {index + 1}")
    return 16 + 8 * index


def offset_arg_high(index: int) -> int:
    """Offset of the high 32 bits of args[index]: a pointer is NULL only if both halves are 0."""
    return offset_arg_low(index) + 4


@dataclass(frozen=True)
class Label:
    name: str


@dataclass(frozen=True)
class Insn:
    code: int
    k: int = 0
    jt: Label | None = None
    jf: Label | None = None


Item = Insn | Label


def load(offset: int) -> Insn:
    return Insn(BPF_LD | BPF_W | BPF_ABS, offset)


def and_(mask: int) -> Insn:
    return Insn(BPF_ALU | BPF_AND | BPF_K, mask)


def jeq(value: int, jt: Label | None = None, jf: Label | None = None) -> Insn:
    """Jump to `jt` if A == value, else to `jf`; None means the next instruction."""
    return Insn(BPF_JMP | BPF_JEQ | BPF_K, value, jt, jf)


def ret(action: int) -> Insn:
    return Insn(BPF_RET | BPF_K, action)


def assemble(items: Sequence[Item]) -> bytes:
    """Resolve labels and pack each instruction as `struct sock_filter` (u16, u8, u8, u32)."""
    positions: dict[Label, int] = {}
    count = 0
    for item in items:
        if isinstance(item, Label):
            if item in positions:
                raise ValueError(f"label {item.name} defined twice")
            positions[item] = count
        else:
            count += 1
    if count > BPF_MAXINSNS:
        raise ValueError(f"{count} instructions exceed the kernel's {BPF_MAXINSNS}")
    out = bytearray()
    pc = 0
    for item in items:
        if isinstance(item, Label):
            continue
        jt = _offset(positions, item.jt, pc)
        jf = _offset(positions, item.jf, pc)
        out += struct.pack("=HBBI", item.code, jt, jf, item.k & 0xFFFFFFFF)
        pc += 1
    return bytes(out)


def _offset(positions: dict[Label, int], label: Label | None, pc: int) -> int:
    if label is None:
        return 0
    if label not in positions:
        raise ValueError(f"label {label.name} is not defined")
    delta = positions[label] - pc - 1
    # Classic BPF only jumps forward, by at most 255 (linux/filter.h).
    if not 0 <= delta <= 0xFF:
        raise ValueError(f"jump to {label.name} spans {delta} instructions")
    return delta


def disassemble(program: bytes) -> list[tuple[int, int, int, int]]:
    """The (code, jt, jf, k) tuples of a program; for tests and `--explain`."""
    if len(program) % 8:
        raise ValueError("a BPF program is a whole number of 8-byte instructions")
    return [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]


def run(program: bytes, data: bytes) -> int:
    """Interpret the subset of classic BPF that `assemble` emits, over `seccomp_data` bytes.

    The kernel is the authority; this interpreter lets tests check a filter's
    decisions without installing it.
    """
    insns = disassemble(program)
    acc = 0
    pc = 0
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        if code == BPF_LD | BPF_W | BPF_ABS:
            (acc,) = struct.unpack_from("=I", data, k)
        elif code == BPF_ALU | BPF_AND | BPF_K:
            acc &= k
        elif code == BPF_JMP | BPF_JEQ | BPF_K:
            pc += jt if acc == k else jf
        elif code == BPF_JMP | BPF_JA:
            pc += k
        elif code == BPF_RET | BPF_K:
            return k
        else:
            raise ValueError(f"instruction {code:#x} is not in the emitted subset")
        pc += 1
    raise ValueError("the program ran off its end")
