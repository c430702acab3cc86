// Output-path checks of the `adalog` commands (contract in cli/output_check.h).
#include "cli/output_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cli/args.h"
#include "quant/error.h"
#include "runtime/atomic_write.h"

namespace adalog::cli {
namespace {

std::string Described(const NamedPath& p) {
  return p.option.empty() || p.option[0] != '-' ? p.option + " '" + p.path + "'" : p.option + " " + p.path;
}

}  // namespace

void CheckOutputPath(const NamedPath& output, const std::vector<NamedPath>& inputs, const std::string& command) {
  const std::string& path = output.path;
  struct stat out {};
  const bool exists = ::stat(path.c_str(), &out) == 0;  // follows symbolic links
  std::error_code ec;
  const auto spelled = [&ec](const std::string& p) { return std::filesystem::absolute(p, ec).lexically_normal(); };
  for (const NamedPath& in : inputs) {
    if (in.path.empty()) continue;
    struct stat st {};
    const bool same_file = exists && ::stat(in.path.c_str(), &st) == 0 && st.st_dev == out.st_dev &&
                           st.st_ino == out.st_ino;
    // An output that does not exist yet is compared as spelled, once made absolute ("./x", "x").
    if (same_file || (!exists && spelled(in.path) == spelled(path))) {
      const bool same_spelling = in.path == path;
      throw UsageError(command + ": " + output.option + " " + path + " is the same file as " + Described(in) +
                       (same_spelling ? "" : " (another name, a hard link or a symbolic link to it)") +
                       "; writing it would destroy the input. Give another output path");
    }
  }
  CheckRegularOrAbsent(path, "output");
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat d {};
  ADALOG_CHECK(::stat(dir.c_str(), &d) == 0 && S_ISDIR(d.st_mode), "output '", path, "': directory '", dir,
               "' does not exist");
  const std::string probe = path + ".probe." + std::to_string(static_cast<long>(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  ADALOG_CHECK(fd >= 0, "output '", path, "': cannot create files in directory '", dir, "' (",
               std::strerror(errno), "; not writable)");
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace adalog::cli
