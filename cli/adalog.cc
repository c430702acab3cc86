// The `adalog` command: dispatches quantize | eval | run | bench | inspect | report | export, and maps failures to
// exit codes: 0 success, 1 runtime error (bad model, unreadable data, ...), 2 usage error,
// 130 interrupted by Ctrl-C (SIGINT).
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "runtime/adalog_runtime.h"

namespace adalog::cli {
namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;  // 128 + SIGINT

std::string CommandNames() {
  std::string s;
  for (const CommandSpec& c : AllCommands()) s += (s.empty() ? "" : ", ") + c.name;
  return s;
}

std::string MainHelp() {
  std::string s =
      "usage: adalog COMMAND [arguments] [options]\n"
      "       adalog COMMAND --help | adalog --help | adalog --version\n\n"
      "Post-training quantization (AdaLog) and an integer CPU runtime for Vision Transformers.\n\n"
      "commands:\n";
  for (const CommandSpec& c : AllCommands()) {
    s += "  " + c.name + std::string(c.name.size() < 10 ? 10 - c.name.size() : 1, ' ') + c.summary + "\n";
  }
  s += "\nexit status: 0 success, 1 runtime error, 2 usage error, 130 interrupted (Ctrl-C).\n";
  return s;
}

int Main(const std::vector<std::string>& argv) {
  if (argv.empty()) {
    std::fputs(MainHelp().c_str(), stderr);
    return kExitUsage;
  }
  const std::string& first = argv[0];
  if (first == "--version" || first == "-V" || first == "version") {
    std::string v = RuntimeVersionString();
    while (!v.empty() && v.back() == '\n') v.pop_back();
    std::printf("%s\n", v.c_str());
    return 0;
  }
  if (first == "--help" || first == "-h" || first == "help") {
    if (first == "help" && argv.size() >= 2) {
      const CommandSpec* spec = FindCommand(argv[1]);
      if (spec == nullptr) {
        throw UsageError("unknown command '" + argv[1] + "' (commands: " + CommandNames() + ")");
      }
      std::fputs(CommandHelp(*spec).c_str(), stdout);
      return 0;
    }
    std::fputs(MainHelp().c_str(), stdout);
    return 0;
  }
  if (!first.empty() && first[0] == '-') {
    throw UsageError("unknown option '" + first + "' before the command (see adalog --help)");
  }
  const CommandSpec* spec = FindCommand(first);
  if (spec == nullptr) {
    throw UsageError("unknown command '" + first + "' (commands: " + CommandNames() + "; see adalog --help)");
  }
  ParsedArgs args = ParseCommand(*spec, std::vector<std::string>(argv.begin() + 1, argv.end()));
  if (args.help_requested()) {
    std::fputs(CommandHelp(*spec).c_str(), stdout);
    return 0;
  }
  return RunCommand(args);
}

}  // namespace
}  // namespace adalog::cli

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return adalog::cli::Main(args);
  } catch (const adalog::cli::UsageError& e) {
    std::fprintf(stderr, "adalog: error: %s\n", e.what());
    return adalog::cli::kExitUsage;
  } catch (const adalog::cli::Interrupted& e) {
    std::fprintf(stderr, "adalog: error: %s\n", e.what());
    return adalog::cli::kExitInterrupted;
  } catch (const adalog::Error& e) {
    std::fprintf(stderr, "adalog: error: %s\n", e.what());
    return adalog::cli::kExitRuntime;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "adalog: error: out of memory\n");
    return adalog::cli::kExitRuntime;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "adalog: internal error: %s\n", e.what());
    return adalog::cli::kExitRuntime;
  }
}
