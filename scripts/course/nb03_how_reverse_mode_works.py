"""03 How reverse mode works: the graph, the tape forward and backward, and expression swell."""

from __future__ import annotations

from .cells import code, exercise, md, notebook, title

FILENAME = "03_how_reverse_mode_works.ipynb"


def build():
    return notebook("nb03", [
        title("How reverse mode works", [
            "draw the computational graph of a function and read its forward values;",
            "run the backward pass by hand: seed the output with 1, push adjoints to the "
            "parents with the local derivatives, and add up adjoints of values used twice;",
            "step through the same backward pass with `wb.backprop` and check it against the "
            "symbolic gradient (`wb.grad`, `wb.derivative`, `wb.check`);",
            "explain why differentiating one big formula swells exponentially, and how shared "
            "subexpressions keep the derivative linear in the size of the program.",
        ], intro="""
            Reverse mode (backpropagation) is how `torch`, `jax` and workbench compute gradients.
            It needs one forward pass that records every intermediate value, and one backward
            pass that visits the records in reverse and applies the chain rule locally. This
            notebook does it by hand first, then with workbench's views, then explains why
            workbench's symbolic derivatives are built the same way.
        """),
        code("""
            import time

            import numpy as np
            import sympy
            import workbench as wb
        """),
        md("""
            ## The running example

            $$f(x, y) = x\\,y + \\sin x \\qquad \\text{at } (x, y) = (2, 3).$$

            By hand: $\\partial f / \\partial x = y + \\cos x$ and $\\partial f / \\partial y = x$.
            Note that $x$ is used **twice** (in the product and in the sine): its gradient will
            be the sum of two contributions.
        """),
        code("""
            def f(x, y):
                return x * y + wb.sin(x)  # wb.sin: like np.sin, and it also accepts torch tensors

            x0, y0 = 2.0, 3.0
            expected = (y0 + np.cos(x0), x0)
            assert np.allclose(wb.grad(f, argnums=(0, 1))(x0, y0), expected)
            expected
        """),
        md("""
            ## The computational graph

            `wb.graph` traces `f` at the point and draws one node per operation, with the data
            flowing along the edges. Hover over a node to see its expression and its value.
        """),
        code("""
            wb.graph(f, x0, y0)
        """),
        md("""
            The drawing is made from a JSON document (the same one the JupyterLab extension
            renders). Every node has its forward value and, for a scalar output, its adjoint
            (computed by the backward pass we do by hand next); check a few of them:
        """),
        code("""
            graph_doc = wb.graph(f, x0, y0).to_json()
            nodes = {node["id"]: node for node in graph_doc["nodes"]}
            inputs = {nodes[i]["label"]: nodes[i] for i in graph_doc["inputs"]}
            output = nodes[graph_doc["outputs"][0]]
            assert set(inputs) == {"x", "y"}
            assert inputs["x"]["value"] == x0 and inputs["y"]["value"] == y0
            assert np.isclose(output["value"], f(x0, y0))
            ops = sorted(node["op"] for node in graph_doc["nodes"] if node["op"] not in ("input", "const"))
            print("operations:", ops, " f(2, 3) =", output["value"])
            assert "sin" in ops and "mul" in ops
            # after the backward pass, each input node carries its adjoint: the gradient
            assert np.allclose([inputs["x"]["adjoint"], inputs["y"]["adjoint"]], expected)
        """),
        md("""
            ## The backward pass, by hand

            Write the function as a list of steps (a *Wengert list*), each one operation on
            earlier values:

            | step | operation | value at (2, 3) |
            |---|---|---|
            | $v_0$ | $x$ | 2 |
            | $v_1$ | $y$ | 3 |
            | $v_2$ | $v_0 \\cdot v_1$ | 6 |
            | $v_3$ | $\\sin v_0$ | 0.909 |
            | $v_4$ | $v_2 + v_3$ | 6.909 |

            The **adjoint** $\\bar v_i = \\partial f / \\partial v_i$ says how much the output
            moves when $v_i$ moves. Start with $\\bar v_4 = 1$ and walk backwards; each step
            adds $\\bar v_{\\text{child}} \\cdot \\partial v_{\\text{child}} / \\partial v_i$ to the
            adjoint of each of its inputs $v_i$. In code, with the local derivatives of each
            operation written out:
        """),
        code("""
            def apply(op, a):  # the value of one operation at its input values a
                if op == "mul":
                    return a[0] * a[1]
                if op == "add":
                    return a[0] + a[1]
                return np.sin(a[0])

            def local_derivatives(op, a):  # d op / d (each input), at the input values a
                if op == "mul":
                    return (a[1], a[0])
                if op == "add":
                    return (1.0, 1.0)
                return (np.cos(a[0]),)

            # forward: each step is (operation, the steps it reads); keep every value
            steps = [("input x", ()), ("input y", ()), ("mul", (0, 1)), ("sin", (0,)), ("add", (2, 3))]
            values = [x0, y0]
            for op, args in steps[2:]:
                values.append(apply(op, [values[i] for i in args]))

            # backward: seed the output with 1, then visit the steps in reverse order
            adjoints = [0.0] * len(steps)
            adjoints[-1] = 1.0
            for k in reversed(range(2, len(steps))):
                op, args = steps[k]
                for i, d in zip(args, local_derivatives(op, [values[j] for j in args])):
                    adjoints[i] += adjoints[k] * d      # += : x is used twice
                    print(f"step {k} ({op}): adds {adjoints[k] * d:+.4f} to v{i}"
                          f"  ->  adjoint of v{i} is {adjoints[i]:.4f}")

            assert np.isclose(values[-1], f(x0, y0))
            assert np.allclose(adjoints[:2], expected)
            adjoints[:2]
        """),
        md("""
            ## The same backward pass with `wb.backprop`

            `wb.backprop` records the function on workbench's numeric tape (reverse mode over
            numpy, with its own hand-written derivative rules) and shows the forward table and
            then every backward step, each adjoint as it accumulates. As with `wb.grad`,
            `argnums` says which arguments get gradients (here both). Step through it:
        """),
        code("""
            wb.backprop(f, x0, y0, argnums=(0, 1))
        """),
        md("""
            Its document lists the backward steps in processing order: each step takes a node
            whose adjoint is final and pushes one contribution to each of its inputs (`value`),
            after which that input's adjoint is `total`. Check it against the hand computation:
            the first step is the output with the seed 1, $x$ receives **two** contributions,
            and the final totals are the gradient.
        """),
        code("""
            tape_doc = wb.backprop(f, x0, y0, argnums=(0, 1)).to_json()
            backward = tape_doc["backward"]
            assert backward[0]["node"] == tape_doc["output"] and backward[0]["adjoint"] == 1.0

            labels = {node["id"]: node["label"] for node in tape_doc["nodes"]}
            received = {name: [] for name in ("x", "y")}
            for step in backward:
                for c in step["contributions"]:
                    if labels.get(c["to"]) in received:
                        received[labels[c["to"]]].append((c["value"], c["total"]))
                    print(f"node {step['node']} (adjoint {step['adjoint']:.4f}) -> node {c['to']}: "
                          f"{c['value']:+.4f}, total {c['total']:.4f}")

            assert len(received["x"]) == 2   # through the product and through the sine
            assert sorted(v for v, _ in received["x"]) == sorted([y0, np.cos(x0)])
            assert np.isclose(received["x"][-1][1], expected[0])   # the last total is the gradient
            assert np.isclose(received["y"][-1][1], expected[1])
        """),
        md("""
            For a lecture without the JupyterLab extension, `.widget()` gives the same steps
            with buttons and a slider:
        """),
        code("""
            wb.backprop(f, x0, y0, argnums=(0, 1)).widget()
        """),
        md("""
            ### A neuron: the same pass over arrays

            The tape works on whole arrays: one row per array operation. For a neuron
            $\\tanh(x \\cdot w)$ with three weights, the rows are the dot product and the
            tanh, and the gradient that reaches `w` is $(1 - \\tanh^2(x \\cdot w))\\,x$: the
            tanh's local derivative times the dot product's (which is $x$).
        """),
        code("""
            def neuron(w, x):
                return np.tanh(x @ w)

            w_neuron, x_neuron = np.array([0.5, -1.0, 0.25]), np.array([1.0, 2.0, 3.0])
            neuron_view = wb.backprop(neuron, w_neuron, x_neuron)
            neuron_doc = neuron_view.to_json()
            w_node = next(n for n in neuron_doc["nodes"] if n["label"] == "w")
            z = x_neuron @ w_neuron
            assert np.allclose(w_node["adjoint"], (1 - np.tanh(z) ** 2) * x_neuron)
            neuron_view
        """),
        md("""
            ## Checked against the symbolic result

            Workbench's symbolic side runs the same algorithm, but on formulas instead of
            numbers: the adjoints are SymPy expressions. The result is the formula we derived
            by hand, and `wb.check` confirms that the symbolic gradient, the numeric tape,
            finite differences and (when installed) `torch.func.grad` agree.
        """),
        code("""
            d = wb.derivative(f, argnums=(0, 1))
            x, y = d.symbols["x"], d.symbols["y"]
            assert d.expr == (y + sympy.cos(x), x)
            d
        """),
        code("""
            report = wb.check(f, x0, y0, argnums=(0, 1))
            assert report.passed
            report
        """),
        md("""
            ## Why not just call `sympy.diff`?

            Take $g(x) = x \\sin x$ and compose it with itself $n$ times:
            $g_1(x) = x \\sin x$, $g_2(x) = g_1(x) \\sin g_1(x)$, and so on. As a program that is
            $2n$ operations. As a formula **tree**, each level uses the previous one twice, so
            the tree doubles at every level, and `sympy.diff` on that tree (product rule,
            chain rule) produces an even faster-growing derivative.
        """),
        code("""
            x = sympy.Symbol("x")
            expression = x
            sympy_sizes = []
            start = time.perf_counter()
            for n in range(1, 8):
                expression = sympy.sin(expression) * expression
                derivative = sympy.diff(expression, x)
                sympy_sizes.append((n, sympy.count_ops(expression), sympy.count_ops(derivative)))
            elapsed = time.perf_counter() - start

            print(" n   ops in g_n   ops in g_n' (sympy.diff)")
            for n, size_f, size_d in sympy_sizes:
                print(f"{n:2d}   {size_f:10d}   {size_d:10d}")
            print(f"({elapsed:.2f} s)")
            growth = [b[2] / a[2] for a, b in zip(sympy_sizes, sympy_sizes[1:])]
            assert all(r > 2 for r in growth[2:])  # more than doubling at every level
        """),
        md("""
            Workbench never builds that tree. It traces the **program** (each operation once,
            with its inputs as references: a graph with shared subexpressions) and runs reverse
            mode over it, so each adjoint is one new node that refers to earlier nodes. The
            **size meter** of `wb.trace` and `wb.derivative` shows both counts: the tree the
            formula would be if written out, and the operations the program actually has
            after sharing common subexpressions (CSE).
        """),
        code("""
            def composed(n):
                def g(x):
                    for _ in range(n):
                        x = np.sin(x) * x
                    return x
                return g

            print(" n   g_n: tree / operations     g_n': tree / operations")
            workbench_sizes = []
            for n in range(1, 8):
                d = wb.derivative(composed(n), simplify=False)
                value_size, gradient_size = d.forward.size, d.formulas[0].size
                workbench_sizes.append((n, gradient_size.tree, gradient_size.ops))
                print(f"{n:2d}   {value_size.tree:6d} / {value_size.ops:3d}"
                      f"               {gradient_size.tree:7d} / {gradient_size.ops:3d}")

            ops = [s[2] for s in workbench_sizes]
            steps_per_level = {b - a for a, b in zip(ops, ops[1:])}
            assert len(steps_per_level) == 1   # the same number of new operations per level: linear
            trees = [s[1] for s in workbench_sizes]
            assert all(b > 3 * a for a, b in zip(trees[2:], trees[3:]))  # the tree: exponential
            print(f"each level adds {steps_per_level.pop()} operations to the derivative")
        """),
        md("""
            The derivative of $g_7$ as a formula tree would have about fifty thousand nodes; as
            a program it has 46 operations. Past a size limit (`wb.config`), `wb.derivative`
            shows such a result as a list of named intermediate values rather than one enormous
            formula:
        """),
        code("""
            big = wb.derivative(composed(6), simplify=False)
            assert big.formulas[0].expr is None and big.formulas[0].assignments  # shown as assignments
            big
        """),
        md("""
            SymPy can share subexpressions too, after the fact: `sympy.cse` finds the repeated
            subtrees of its derivative. The size drops from thousands of operations to about a
            hundred, confirming that the swell was repetition, not new information. Building the
            derivative on the shared graph from the start avoids creating the repetition at
            all, which is what keeps workbench fast on deep programs.
        """),
        code("""
            replacements, reduced = sympy.cse(derivative)
            cse_ops = sum(sympy.count_ops(v) for _, v in replacements) + sympy.count_ops(reduced[0])
            print(f"sympy.diff of g_7: {sympy.count_ops(derivative)} operations; after sympy.cse: {cse_ops}")
            assert cse_ops < sympy.count_ops(derivative) / 20
        """),
        md("""
            ## Exercises
        """),
        exercise(1, """
            Run the backward pass by hand (reuse `apply` and `local_derivatives` from above)
            for $h(x, y) = (x + y)\\,x$ at $(1, 2)$. Which node's adjoint accumulates twice?
            Compare with `wb.grad(h, argnums=(0, 1))`.
        """, """
            def h(x, y):
                return (x + y) * x

            steps_h = [("input x", ()), ("input y", ()), ("add", (0, 1)), ("mul", (2, 0))]
            vals = [1.0, 2.0]
            for op, args in steps_h[2:]:
                vals.append(apply(op, [vals[i] for i in args]))
            adj = [0.0, 0.0, 0.0, 1.0]
            for k in (3, 2):
                op, args = steps_h[k]
                for i, dv in zip(args, local_derivatives(op, [vals[j] for j in args])):
                    adj[i] += adj[k] * dv
            # x is used by the add and by the mul: 2x + y = 4; y: x = 1
            assert np.allclose(adj[:2], wb.grad(h, argnums=(0, 1))(1.0, 2.0))
            assert np.allclose(adj[:2], [4.0, 1.0])
            adj[:2]
        """),
        exercise(2, """
            Use `wb.backprop` on $h$ at $(1, 2)$ and find, in its document, the node whose
            adjoint receives two contributions. Is it the one you predicted?
        """, """
            doc_h = wb.backprop(h, 1.0, 2.0).to_json()
            counts = {}
            for step in doc_h["backward"]:
                for c in step["contributions"]:
                    counts[c["to"]] = counts.get(c["to"], 0) + 1
            twice = [node for node, k in counts.items() if k == 2]
            names = {node["id"]: node["label"] for node in doc_h["nodes"]}
            assert [names[node] for node in twice] == ["x"]
            wb.backprop(h, 1.0, 2.0)
        """),
        exercise(3, """
            Compose $u(x) = \\tanh(x) + x$ with itself $n = 1, \\dots, 5$ times. Does `sympy.diff`
            swell? How many operations does each level add to workbench's derivative?
        """, """
            def composed_u(n):
                def u(x):
                    for _ in range(n):
                        x = np.tanh(x) + x
                    return x
                return u

            z = sympy.Symbol("z")
            e = z
            sympy_growth, wb_ops = [], []
            for n in range(1, 6):
                e = sympy.tanh(e) + e
                sympy_growth.append(sympy.count_ops(sympy.diff(e, z)))
                wb_ops.append(wb.derivative(composed_u(n), simplify=False).formulas[0].size.ops)
            print("sympy.diff:", sympy_growth)
            print("workbench: ", wb_ops)
            assert len({b - a for a, b in zip(wb_ops, wb_ops[1:])}) == 1   # linear
            assert sympy_growth[-1] > 5 * sympy_growth[1]                # swells
        """),
    ])
