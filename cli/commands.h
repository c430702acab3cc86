// The `adalog` subcommands: their argument specs (command_specs.cc) and their bodies
// (commands.cc). Each body returns the process exit code; it throws adalog::Error for runtime
// failures (exit 1), UsageError for argument combinations the parser cannot check (exit 2) and
// Interrupted after a Ctrl-C (exit 130).
#pragma once

#include <string>
#include <vector>

#include "cli/args.h"

namespace adalog::cli {

// A Ctrl-C honoured at a safe point: the CLI exits with 130 (128 + SIGINT, the shell convention).
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& what) : Error(what) {}
};

// All subcommands in the order `adalog --help` lists them.
const std::vector<CommandSpec>& AllCommands();
// nullptr when `name` is not a subcommand.
const CommandSpec* FindCommand(const std::string& name);

int RunInspect(const ParsedArgs& args);
int RunRun(const ParsedArgs& args);
int RunEval(const ParsedArgs& args);
int RunBench(const ParsedArgs& args);
int RunQuantize(const ParsedArgs& args);
int RunReport(const ParsedArgs& args);  // report.cc
CommandSpec ReportCommandSpec();        // report.cc
int RunExport(const ParsedArgs& args);  // export.cc
CommandSpec ExportCommandSpec();        // export.cc

// Dispatches a parsed subcommand to its body.
int RunCommand(const ParsedArgs& args);

}  // namespace adalog::cli
