// The `adalog` command line: a small, strict parser driven by a per-subcommand spec, and the
// --help text generated from the same spec (so the two cannot disagree).
//
// Accepted syntax (after the subcommand name):
//   --name value | --name=value   option with a value (ints are range-checked at parse time)
//   --flag                         boolean flag (--flag=value is an error)
//   -o value                       a one-letter alias declared in the spec
//   --                             everything after it is positional
//   -h | --help                    anywhere: print the subcommand's help instead of running
// Every violation throws UsageError (exit code 2 at the CLI) with a message that names the
// option and the subcommand: unknown options, missing or extra values, repeated options,
// malformed or out-of-range integers, bad choices, missing required options or positionals.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "quant/error.h"

namespace adalog::cli {

// A mistake in how the command was called (as opposed to a failure while running it).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

enum class OptionKind {
  kFlag,    // boolean, no value
  kString,  // any non-empty value
  kInt,     // integer in [min, max]
  kChoice,  // one of `choices`
};

struct OptionSpec {
  std::string name;          // long name without the dashes: "threads"
  OptionKind kind = OptionKind::kString;
  std::string metavar;       // shown in help: "N", "X.npy"
  std::string help;          // one line
  char short_name = 0;       // optional one-letter alias: 'o' for -o
  bool required = false;
  int64_t min = 0;           // kInt only
  int64_t max = 0;           // kInt only
  std::vector<std::string> choices;  // kChoice only
  std::string default_text;  // shown in help when non-empty: "1", "all cores"
};

// Option builders (every command's spec uses them).
OptionSpec Flag(std::string name, std::string help);
OptionSpec Str(std::string name, std::string metavar, std::string help, bool required = false);
OptionSpec Int(std::string name, std::string metavar, std::string help, int64_t min, int64_t max,
               std::string default_text);
OptionSpec Choice(std::string name, std::vector<std::string> choices, std::string help,
                  std::string default_text);

struct PositionalSpec {
  std::string name;  // "MODEL"
  std::string help;
};

struct CommandSpec {
  std::string name;     // "run"
  std::string summary;  // one line for `adalog --help`
  std::vector<PositionalSpec> positionals;  // exactly these, in order
  std::vector<OptionSpec> options;
  std::string details;  // free text printed after the option list (examples, notes)
};

// The result of parsing one subcommand's arguments. Accessors for options the spec does not
// declare are programming errors (assert); values were validated during parsing.
class ParsedArgs {
 public:
  const std::string& command() const { return command_; }
  bool help_requested() const { return help_; }
  const std::vector<std::string>& positionals() const { return positionals_; }
  const std::string& positional(size_t i) const;

  bool Has(const std::string& name) const;  // given on the command line (flags: set)
  bool Flag(const std::string& name) const;
  std::string String(const std::string& name, const std::string& fallback = "") const;
  int64_t Int(const std::string& name, int64_t fallback) const;

 private:
  friend ParsedArgs ParseCommand(const CommandSpec& spec, const std::vector<std::string>& args);
  const CommandSpec* spec_ = nullptr;
  std::string command_;
  bool help_ = false;
  std::vector<std::string> positionals_;
  std::map<std::string, std::string> values_;  // long name -> raw value ("" for flags)
  std::map<std::string, int64_t> ints_;
};

// Parses the arguments that follow the subcommand name. Throws UsageError.
ParsedArgs ParseCommand(const CommandSpec& spec, const std::vector<std::string>& args);

// `adalog NAME --help` text.
std::string CommandHelp(const CommandSpec& spec);
// The one-line "usage: adalog NAME ..." synopsis.
std::string CommandSynopsis(const CommandSpec& spec);

// Strict integer parsing: optional sign, decimal digits, nothing else, no overflow, in [min, max].
// `what` names the value in the error ("option '--batch' of 'adalog run'").
int64_t ParseInt(const std::string& text, int64_t min, int64_t max, const std::string& what);
// Strict float parsing (finite, the whole text consumed).
float ParseFloat(const std::string& text, const std::string& what);
// "a,b,c" with exactly `count` finite floats.
std::vector<float> ParseFloatList(const std::string& text, size_t count, const std::string& what);

struct BitWidths {
  int weight_bits = 0;
  int act_bits = 0;
};
// "W4A4", "w8a8", "W4A8": weight and activation bits, each in [2, 8].
BitWidths ParseBits(const std::string& text, const std::string& what);

}  // namespace adalog::cli
