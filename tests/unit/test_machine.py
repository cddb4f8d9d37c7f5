"""Machine fingerprints (bench.machine) and what the gate says when machines differ."""

import pandas as pd

from bench import machine
from bench.compare import machine_note
from bench.results import Results, machine_summary

XEON_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)   Processor
flags\t\t: fpu sse4_1 sse4_2 avx avx2 avx512f avx512bw amx_bf16 amx_tile
"""
EPYC_AVX2 = """processor\t: 0
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse4_2 avx avx2 fma
"""
GRAVITON = """processor\t: 0
Features\t: fp asimd evtstrm aes crc32
CPU implementer\t: 0x41
"""


def test_cpu_model_and_isa_from_cpuinfo():
    assert machine.cpu_model(XEON_AMX) == "Intel(R) Xeon(R) Processor"  # spaces collapsed
    assert machine.isa_level(XEON_AMX) == "AMX"
    assert machine.cpu_model(EPYC_AVX2) == "AMD EPYC 7B12"
    assert machine.isa_level(EPYC_AVX2) == "AVX2"
    assert machine.isa_level(GRAVITON) == "NEON"
    assert machine.isa_level("") == "unknown"


def test_kind_depends_on_what_decides_floats_only():
    info = dict(cpu_model="X", isa="AVX2", cpu_capability="AVX2", torch="2.13.0", blas="MKL 2024.2",
                onednn="3.12.0", threads=1, os="Linux-6.1")  # fmt: skip
    same = machine.kind_of({**info, "os": "Linux-6.18"})
    assert same == machine.kind_of(info) and len(same) == 10
    for field, other in [
        ("isa", "AVX-512"),
        ("cpu_capability", "AVX512"),
        ("threads", 2),
        ("torch", "2.12.0"),
    ]:
        assert machine.kind_of({**info, field: other}) != same, field
    assert machine.label(info) == "X · AVX2 · torch AVX2 · 1 thread"
    assert machine.label({**info, "threads": 2}).endswith("2 threads")
    assert machine.label({}) == "not recorded" and machine.parse(None) == {} and machine.parse("[1]") == {}


def test_this_machine():
    fp = machine.fingerprint()
    assert set(machine.FIELDS) | {"kind"} == set(fp)
    assert fp["kind"] == machine.kind_of(fp)


def _results(kinds: list[str]) -> Results:
    runs = pd.DataFrame({
        "run_key": [f"k{i}" for i in range(len(kinds))], "suite": "s", "suite_version": "1", "task": "t",
        "algorithm": "a", "algo": "a", "seed": range(len(kinds)), "status": "done", "machine": kinds,
        "cpu": [f"cpu {k}" if k else "" for k in kinds],
    })  # fmt: skip
    return Results(runs, pd.DataFrame(), "test")


def test_compare_says_when_machines_differ():
    assert machine_note(_results(["aaa", "aaa"]), _results(["aaa"])) == ""
    note = machine_note(_results(["bbb", "bbb"]), _results(["aaa", "aaa"]))
    assert note.startswith("MACHINES DIFFER: the baseline ran on aaa (cpu aaa), the store on bbb (cpu bbb)")
    assert "Machines unknown for the baseline" in machine_note(_results(["aaa"]), _results([""]))
    assert "Neither side records" in machine_note(_results([""]), _results([""]))


def test_provenance_counts_machine_kinds():
    text = machine_summary(_results(["aaa", "bbb", "bbb", ""]).runs)
    assert text == "2 kinds: aaa cpu aaa (1 runs); bbb cpu bbb (2 runs); not recorded (1 runs)"
    assert machine_summary(pd.DataFrame({"x": [1]})) == "not recorded"
