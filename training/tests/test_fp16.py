"""fp16 conversion of a graph (styled_vq/fp16.py): float16 inside, float32 at the edges,
chosen ops kept in float32. The package-level script is exercised by test/fp16-variant.test.ts."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from styled_vq.fp16 import convert_graph


def small_graph():
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    scale = numpy_helper.from_array(np.ones(3, dtype=np.float32), "scale")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("LayerNormalization", ["h", "scale"], ["n"], axis=-1),
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.float32(0.5), "c")),
        helper.make_node("Mul", ["n", "c"], ["y"]),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])], [w, scale])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_weights_and_constants_become_float16_with_float32_io():
    half = convert_graph(small_graph())
    g = half.graph
    assert [i.type.tensor_type.elem_type for i in g.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in g.output] == [TensorProto.FLOAT]
    assert {t.name: t.data_type for t in g.initializer} == {"w": TensorProto.FLOAT16, "scale": TensorProto.FLOAT16}
    const = next(n for n in g.node if n.op_type == "Constant")
    assert const.attribute[0].t.data_type == TensorProto.FLOAT16
    assert g.node[0].op_type == "Cast" and g.node[-1].op_type == "Cast"  # in and out
    onnx.checker.check_model(half)


def test_kept_ops_run_in_float32_between_casts():
    half = convert_graph(small_graph(), keep_fp32=("LayerNormalization",))
    ops = [n.op_type for n in half.graph.node]
    ln = ops.index("LayerNormalization")
    assert ops[ln - 2:ln] == ["Cast", "Cast"]  # both float inputs cast up
    assert ops[ln + 1] == "Cast"  # the output cast back down
    ups = [n for n in half.graph.node[ln - 2:ln]]
    assert all(a.i == TensorProto.FLOAT for n in ups for a in n.attribute if a.name == "to")
    onnx.checker.check_model(half)
