"""Read a submission's source (never run it) for answers it did not write.

`free_answers(source, allowed)` returns {function name: reason} for each top-level
function that uses, directly or through another function of the file:
- a ganlib name the lesson does not allow (`allowed` = {"ganlib.losses": ["bce"]}:
  only those names of those modules; every other ganlib module or name holds a
  reference implementation), by import or attribute (`losses.kl_divergence`);
- the solutions (`import solutions...`, any string containing "solutions");
- a way around these checks: importlib, __import__, exec/eval/compile, ctypes, gc,
  subprocess, or a function's internals (__globals__, __code__, __closure__...).
What the module does at top level counts against every function (key "*").
"""

import ast

ESCAPES = {"__import__", "exec", "eval", "compile", "__globals__", "__code__", "__closure__",
           "__builtins__", "__subclasses__", "__loader__", "__spec__", "__self__", "globals",
           "vars", "getattr"}
BANNED_MODULES = {"importlib", "ctypes", "gc", "subprocess", "multiprocessing", "solutions"}


def _module_reason(module, name, allowed):
    """Why `from module import name` (or `import module` when name is None) is refused."""
    top = module.split(".")[0]
    if top in BANNED_MODULES:
        return f"it imports {module}, which graded code may not use"
    if top != "ganlib":
        return None
    if name is None:
        return None if module in allowed or module == "ganlib" else (
            f"it imports {module}, ganlib's reference implementations")
    full = f"{module}.{name}"
    if full in allowed:             # from ganlib import losses
        return None
    if module in allowed and name in allowed[module]:
        return None
    return f"it uses {full}, ganlib's reference implementation; write your own"


class _Visitor(ast.NodeVisitor):
    def __init__(self, allowed):
        self.allowed = allowed
        self.aliases = {}     # local name -> dotted ganlib module or name
        self.reasons = {}     # scope -> first reason
        self.calls = {}       # scope -> names used
        self.scope = "*"

    def flag(self, reason):
        if reason:
            self.reasons.setdefault(self.scope, reason)

    def visit_FunctionDef(self, node):
        outer = self.scope
        if outer == "*":
            self.scope = node.name
        self.generic_visit(node)
        self.scope = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.visit_FunctionDef(node)

    def visit_Import(self, node):
        for alias in node.names:
            self.flag(_module_reason(alias.name, None, self.allowed))
            self.aliases[(alias.asname or alias.name).split(".")[0]] = \
                alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level:
            self.flag("it uses a relative import")
            return
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            if module not in self.allowed:   # names of allowed modules: judged where used
                self.flag(_module_reason(module, alias.name, self.allowed))

    def visit_Attribute(self, node):
        if node.attr in ESCAPES:
            self.flag(f"it uses {node.attr}, which graded code may not use")
        chain, inner = [node.attr], node.value
        while isinstance(inner, ast.Attribute):
            chain.append(inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name) and inner.id in self.aliases:
            dotted = ".".join([self.aliases[inner.id], *reversed(chain)])
            if dotted.startswith("ganlib."):
                parts = dotted.split(".")
                for cut in range(2, len(parts)):
                    module, name = ".".join(parts[:cut]), parts[cut]
                    if module in self.allowed or cut == len(parts) - 1:
                        self.flag(_module_reason(module, name, self.allowed))
                        break
        self.generic_visit(node)

    def visit_Name(self, node):
        target = self.aliases.get(node.id, "")
        if target.startswith("ganlib.") and target.rsplit(".", 1)[0] in self.allowed:
            self.flag(_module_reason(*target.rsplit(".", 1), self.allowed))
        if node.id in ESCAPES:
            self.flag(f"it uses {node.id}, which graded code may not use")
        self.calls.setdefault(self.scope, set()).add(node.id)

    def visit_Constant(self, node):
        if isinstance(node.value, (str, bytes)) and b"solutions" in (
                node.value if isinstance(node.value, bytes) else node.value.encode()):
            self.flag("it refers to the solutions")


def _strip_docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def free_answers(source, allowed=None):
    """{function name or "*": reason} for code that uses references or solutions."""
    try:
        tree = _strip_docstrings(ast.parse(source))
    except SyntaxError:
        return {}          # the import reports it, with its line
    visitor = _Visitor({k: set(v) for k, v in (allowed or {}).items()})
    visitor.visit(tree)
    reasons = dict(visitor.reasons)
    changed = True
    while changed:         # a function that calls a flagged function is flagged too
        changed = False
        for scope, names in visitor.calls.items():
            if scope == "*" or scope in reasons:
                continue
            for name in sorted(names):
                if name in reasons and name != "*":
                    reasons[scope] = f"it calls {name}, which scores 0 ({reasons[name]})"
                    changed = True
                    break
    return reasons
