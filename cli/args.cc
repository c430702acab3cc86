// The `adalog` argument parser and help formatter (see args.h for the accepted syntax).
#include "cli/args.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace adalog::cli {
namespace {

std::string Dashed(const OptionSpec& o) { return "--" + o.name; }

std::string CommandRef(const CommandSpec& spec) { return "'adalog " + spec.name + "'"; }

[[noreturn]] void Usage(const std::string& msg) { throw UsageError(msg); }

const OptionSpec* FindLong(const CommandSpec& spec, const std::string& name) {
  for (const OptionSpec& o : spec.options) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

const OptionSpec* FindShort(const CommandSpec& spec, char c) {
  for (const OptionSpec& o : spec.options) {
    if (o.short_name != 0 && o.short_name == c) return &o;
  }
  return nullptr;
}

// Edit distance, to suggest "--threads" for "--thread".
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Suggestion(const CommandSpec& spec, const std::string& name) {
  const OptionSpec* best = nullptr;
  size_t best_d = 3;  // suggest only close matches
  for (const OptionSpec& o : spec.options) {
    size_t d = Distance(name, o.name);
    if (d < best_d) {
      best_d = d;
      best = &o;
    }
  }
  return best ? "; did you mean '" + Dashed(*best) + "'?" : "";
}

bool LooksLikeOption(const std::string& s) {
  if (s.size() < 2 || s[0] != '-') return false;
  // "-5" and "-.5" are values (negative numbers), not options.
  return !(std::isdigit(static_cast<unsigned char>(s[1])) || s[1] == '.');
}

std::string JoinChoices(const std::vector<std::string>& choices, const char* sep) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) out += (i ? sep : "") + choices[i];
  return out;
}

std::string OptionUsage(const OptionSpec& o) {
  std::string s = Dashed(o);
  if (o.kind == OptionKind::kChoice) {
    s += " " + (o.metavar.empty() ? JoinChoices(o.choices, "|") : o.metavar);
  } else if (o.kind != OptionKind::kFlag) {
    s += " " + (o.metavar.empty() ? std::string("VALUE") : o.metavar);
  }
  return s;
}

// The fields every option kind has; the builders below add their kind's own.
OptionSpec Option(std::string name, OptionKind kind, std::string metavar, std::string help) {
  OptionSpec o;
  o.name = std::move(name);
  o.kind = kind;
  o.metavar = std::move(metavar);
  o.help = std::move(help);
  return o;
}

}  // namespace

OptionSpec Flag(std::string name, std::string help) {
  return Option(std::move(name), OptionKind::kFlag, "", std::move(help));
}

OptionSpec Str(std::string name, std::string metavar, std::string help, bool required) {
  OptionSpec o = Option(std::move(name), OptionKind::kString, std::move(metavar), std::move(help));
  o.required = required;
  return o;
}

OptionSpec Int(std::string name, std::string metavar, std::string help, int64_t min, int64_t max,
               std::string default_text) {
  OptionSpec o = Option(std::move(name), OptionKind::kInt, std::move(metavar), std::move(help));
  o.min = min;
  o.max = max;
  o.default_text = std::move(default_text);
  return o;
}

OptionSpec Choice(std::string name, std::vector<std::string> choices, std::string help,
                  std::string default_text) {
  OptionSpec o = Option(std::move(name), OptionKind::kChoice, "", std::move(help));
  o.choices = std::move(choices);
  o.default_text = std::move(default_text);
  return o;
}

const std::string& ParsedArgs::positional(size_t i) const {
  assert(i < positionals_.size());
  return positionals_[i];
}

bool ParsedArgs::Has(const std::string& name) const {
  assert(spec_ == nullptr || FindLong(*spec_, name) != nullptr);
  return values_.count(name) != 0;
}

bool ParsedArgs::Flag(const std::string& name) const {
  assert(spec_ == nullptr || FindLong(*spec_, name)->kind == OptionKind::kFlag);
  return Has(name);
}

std::string ParsedArgs::String(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t ParsedArgs::Int(const std::string& name, int64_t fallback) const {
  assert(spec_ == nullptr || FindLong(*spec_, name)->kind == OptionKind::kInt);
  auto it = ints_.find(name);
  return it == ints_.end() ? fallback : it->second;
}

int64_t ParseInt(const std::string& text, int64_t min, int64_t max, const std::string& what) {
  size_t i = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  bool digits = i < text.size();
  for (size_t j = i; j < text.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(text[j]))) digits = false;
  }
  if (!digits) Usage(what + ": '" + text + "' is not an integer");
  errno = 0;
  long long v = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE || v < min || v > max) {
    std::ostringstream os;
    os << what << ": " << text << " is out of range [" << min << ", " << max << "]";
    Usage(os.str());
  }
  return v;
}

float ParseFloat(const std::string& text, const std::string& what) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  bool ok = !text.empty() && !std::isspace(static_cast<unsigned char>(text[0])) &&
            end == begin + text.size() && errno != ERANGE && std::isfinite(v) &&
            std::fabs(v) <= std::numeric_limits<float>::max();
  if (!ok) Usage(what + ": '" + text + "' is not a finite number");
  return static_cast<float>(v);
}

std::vector<float> ParseFloatList(const std::string& text, size_t count, const std::string& what) {
  std::vector<float> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    out.push_back(ParseFloat(item, what));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() != count) {
    std::ostringstream os;
    os << what << ": '" << text << "' has " << out.size() << " values, want " << count
       << " separated by commas";
    Usage(os.str());
  }
  return out;
}

BitWidths ParseBits(const std::string& text, const std::string& what) {
  BitWidths b;
  std::string t = text;
  for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  size_t a = t.find('A');
  bool ok = t.size() >= 4 && t[0] == 'W' && a != std::string::npos && a > 1 && a + 1 < t.size();
  if (ok) {
    for (size_t i = 1; i < t.size(); ++i) {
      if (i != a && !std::isdigit(static_cast<unsigned char>(t[i]))) ok = false;
    }
  }
  if (!ok) Usage(what + ": '" + text + "' is not of the form WxAy (e.g. W4A4, W8A8)");
  b.weight_bits = static_cast<int>(ParseInt(t.substr(1, a - 1), 2, 8, what + " weight bits"));
  b.act_bits = static_cast<int>(ParseInt(t.substr(a + 1), 2, 8, what + " activation bits"));
  return b;
}

ParsedArgs ParseCommand(const CommandSpec& spec, const std::vector<std::string>& args) {
  ParsedArgs out;
  out.spec_ = &spec;
  out.command_ = spec.name;
  const std::string cmd = CommandRef(spec);
  const std::string see = " (see adalog " + spec.name + " --help)";

  // --help anywhere before "--" wins over every other problem on the line.
  for (const std::string& a : args) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") {
      out.help_ = true;
      return out;
    }
  }

  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || !LooksLikeOption(arg)) {
      out.positionals_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    const OptionSpec* opt = nullptr;
    std::string shown;  // the option as the user wrote it
    std::string value;
    bool inline_value = false;
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      shown = "--" + name;
      opt = FindLong(spec, name);
      if (opt == nullptr) {
        std::string hint = Suggestion(spec, name);
        Usage("unknown option '" + shown + "' for " + cmd + hint + see);
      }
    } else {
      shown = arg;
      opt = arg.size() == 2 ? FindShort(spec, arg[1]) : nullptr;
      if (opt == nullptr) Usage("unknown option '" + arg + "' for " + cmd + see);
    }
    const std::string what = "option '" + Dashed(*opt) + "' of " + cmd;
    if (out.values_.count(opt->name)) {
      Usage("option '" + Dashed(*opt) + "' given more than once for " + cmd);
    }
    if (opt->kind == OptionKind::kFlag) {
      if (inline_value) Usage("option '" + Dashed(*opt) + "' of " + cmd + " takes no value");
      out.values_[opt->name] = "";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size() || (LooksLikeOption(args[i + 1]))) {
        Usage("option '" + shown + "' of " + cmd + " needs a value (" + OptionUsage(*opt) + ")");
      }
      value = args[++i];
    }
    if (value.empty()) Usage(what + ": empty value");
    if (opt->kind == OptionKind::kInt) {
      out.ints_[opt->name] = ParseInt(value, opt->min, opt->max, what);
    } else if (opt->kind == OptionKind::kChoice) {
      bool found = false;
      for (const std::string& c : opt->choices) found = found || c == value;
      if (!found) Usage(what + ": '" + value + "' is not one of " + JoinChoices(opt->choices, ", "));
    }
    out.values_[opt->name] = value;
  }

  const auto& want = spec.positionals;
  if (out.positionals_.size() < want.size()) {
    Usage("missing " + want[out.positionals_.size()].name + " for " + cmd + " (usage: " +
          CommandSynopsis(spec) + ")");
  }
  if (out.positionals_.size() > want.size()) {
    Usage("unexpected argument '" + out.positionals_[want.size()] + "' for " + cmd + see);
  }
  for (const OptionSpec& o : spec.options) {
    if (o.required && !out.values_.count(o.name)) {
      Usage("missing required option '" + OptionUsage(o) + "' for " + cmd + see);
    }
  }
  return out;
}

std::string CommandSynopsis(const CommandSpec& spec) {
  std::string s = "adalog " + spec.name;
  for (const PositionalSpec& p : spec.positionals) s += " " + p.name;
  for (const OptionSpec& o : spec.options) {
    if (o.required) s += " " + OptionUsage(o);
  }
  bool any_optional = false;
  for (const OptionSpec& o : spec.options) any_optional = any_optional || !o.required;
  if (any_optional) s += " [options]";
  return s;
}

std::string CommandHelp(const CommandSpec& spec) {
  std::ostringstream os;
  os << "usage: " << CommandSynopsis(spec) << "\n\n" << spec.summary << "\n";
  auto row = [&os](const std::string& left, const std::string& right) {
    os << "  " << left;
    if (left.size() < 28) {
      os << std::string(28 - left.size(), ' ');
    } else {
      os << "\n  " << std::string(28, ' ');
    }
    os << right << "\n";
  };
  if (!spec.positionals.empty()) {
    os << "\narguments:\n";
    for (const PositionalSpec& p : spec.positionals) row(p.name, p.help);
  }
  os << "\noptions:\n";
  for (const OptionSpec& o : spec.options) {
    std::string left = (o.short_name ? std::string("-") + o.short_name + ", " : std::string()) + OptionUsage(o);
    std::string right = o.help;
    if (o.kind == OptionKind::kInt) {
      std::ostringstream r;
      r << " [" << o.min << ".." << o.max << "]";
      right += r.str();
    }
    if (o.required) right += " (required)";
    if (!o.default_text.empty()) right += " (default: " + o.default_text + ")";
    row(left, right);
  }
  row("-h, --help", "show this help");
  if (!spec.details.empty()) os << "\n" << spec.details;
  if (!spec.details.empty() && spec.details.back() != '\n') os << "\n";
  return os.str();
}

}  // namespace adalog::cli
