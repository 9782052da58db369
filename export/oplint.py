"""TensorRT operator lint: every ONNX node checked against TensorRT's ONNX support table.

Runs without TensorRT, at export time, so an unsupported op is found on the workstation rather
than on the Jetson. The table is package data (``data/tensorrt_onnx_ops.tsv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import onnx

TABLE_FILE = "tensorrt_onnx_ops.tsv"


@dataclass(frozen=True)
class LintFinding:
    node: str
    op_type: str
    domain: str
    status: str  # "unsupported", "unlisted" (new op, unknown for this release), "plugin" (custom domain)


@dataclass(frozen=True)
class LintReport:
    tensorrt_version: str
    column: str
    findings: tuple[LintFinding, ...]
    op_counts: dict[str, int]

    @property
    def clean(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        if self.clean:
            return [f"TensorRT {self.tensorrt_version} op lint: clean ({sum(self.op_counts.values())} nodes, {len(self.op_counts)} op types)"]
        out = [f"TensorRT {self.tensorrt_version} op lint: {len(self.findings)} node(s) need attention"]
        out += [f"  {f.status}: {f.op_type} ({f.domain or 'ai.onnx'}) at node '{f.node}'" for f in self.findings]
        return out


def load_support_table() -> tuple[list[str], dict[str, dict[str, str]]]:
    """(version columns, {op: {column: 'Y'|'N'|'?'}}) from the packaged TSV."""
    text = resources.files("edgeperc.export").joinpath("data", TABLE_FILE).read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    columns = header[1:]
    return columns, {row[0]: dict(zip(columns, row[1:])) for row in body}


def column_for(tensorrt_version: str, columns: list[str]) -> str:
    """The table column for a release: the newest listed release not newer than it (10.3 -> 10.1)."""
    def as_tuple(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split(".")[:2])

    wanted = as_tuple(tensorrt_version)
    listed = sorted(((as_tuple(c.removeprefix("trt_").replace("_", ".")), c) for c in columns), reverse=True)
    for version, column in listed:
        if version <= wanted:
            return column
    return listed[-1][1]


def lint_model(model: onnx.ModelProto, tensorrt_version: str = "10.3") -> LintReport:
    """Lint all nodes of the main graph (and subgraphs) against the TensorRT release's column."""
    columns, table = load_support_table()
    column = column_for(tensorrt_version, columns)
    findings: list[LintFinding] = []
    counts: dict[str, int] = {}

    def visit(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            if node.domain not in ("", "ai.onnx"):
                findings.append(LintFinding(node.name, node.op_type, node.domain, "plugin"))
            else:
                status = table.get(node.op_type, {}).get(column, "?")
                if status == "N":
                    findings.append(LintFinding(node.name, node.op_type, node.domain, "unsupported"))
                elif status != "Y":
                    findings.append(LintFinding(node.name, node.op_type, node.domain, "unlisted"))
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    visit(attribute.g)

    visit(model.graph)
    return LintReport(tensorrt_version, column, tuple(findings), counts)
