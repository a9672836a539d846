// Process exit codes that cross a process boundary: the worker exits with
// them and the coordinator classifies attempts by them. Declared once here so
// both sides agree (DESIGN.md, "Preemption").
#pragma once

namespace gantry {

// A worker stopped by SIGTERM/SIGUSR1 after its ranks agreed on a step and
// saved a checkpoint: the coordinator requeues the job without using up a
// restart (EX_TEMPFAIL from sysexits.h: "try again later").
inline constexpr int kExitPreempted = 75;

}  // namespace gantry
