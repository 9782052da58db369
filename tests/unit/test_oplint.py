from edgeperc.export.oplint import column_for, lint_model, load_support_table
from onnx import TensorProto, helper


def _model(*nodes):
    graph = helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph)


def test_table_is_shipped_and_has_both_releases():
    columns, table = load_support_table()
    assert columns == ["trt_10_15", "trt_10_1"]
    assert table["Conv"] == {"trt_10_15": "Y", "trt_10_1": "Y"} and table["Unique"]["trt_10_15"] == "N"


def test_release_column_choice():
    columns, _ = load_support_table()
    assert column_for("10.3", columns) == "trt_10_1"
    assert column_for("10.15", columns) == "trt_10_15" and column_for("11.1", columns) == "trt_10_15"


def test_clean_and_unsupported_nodes_are_named():
    assert lint_model(_model(helper.make_node("Relu", ["x"], ["y"], name="r"))).clean
    report = lint_model(_model(helper.make_node("Relu", ["x"], ["a"], name="r"),
                               helper.make_node("Unique", ["a"], ["b"], name="uniq"),
                               helper.make_node("MatMulNBits", ["b"], ["y"], name="q4", domain="com.microsoft")))
    assert [(f.node, f.status) for f in report.findings] == [("uniq", "unsupported"), ("q4", "plugin")]
    assert "uniq" in "\n".join(report.lines())


def test_release_matters_for_new_ops():
    model = _model(helper.make_node("HannWindow", ["x"], ["y"], name="hann"))
    assert lint_model(model, "10.15").clean
    assert [f.status for f in lint_model(model, "10.3").findings] == ["unsupported"]


def test_topological_sort_repairs_order_and_keeps_sorted_graphs():
    import onnx
    from edgeperc.export.graph_passes import topological_sort

    nodes = [helper.make_node("Relu", ["a"], ["y"], name="second"), helper.make_node("Neg", ["x"], ["a"], name="first")]
    model = _model(*nodes)
    model.opset_import[0].version = 17
    try:
        onnx.checker.check_model(model)
        raise AssertionError("unsorted graph should fail the checker")
    except onnx.checker.ValidationError:
        pass
    sorted_model = topological_sort(model)
    assert [n.name for n in sorted_model.graph.node] == ["first", "second"]
    onnx.checker.check_model(sorted_model)
    assert [n.name for n in topological_sort(sorted_model).graph.node] == ["first", "second"]
