// laserguard._core: type conversion, GIL release and exception mapping only.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_forest(py::module_& m);
void bind_codec(py::module_& m);
void bind_sim(py::module_& m);
void bind_baseline(py::module_& m);
void bind_context(py::module_& m);
void bind_unit_scorer(py::module_& m);
void bind_live(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "laserguard C++ core (forest evaluator)";
  bind_forest(m);
  bind_codec(m);
  bind_sim(m);
  bind_baseline(m);
  bind_context(m);
  bind_unit_scorer(m);
  bind_live(m);
}
