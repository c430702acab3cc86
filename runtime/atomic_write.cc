// Atomic output-file replacement (contract in runtime/atomic_write.h).
#include "runtime/atomic_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "quant/error.h"

namespace adalog {
namespace {

const char* KindName(mode_t m) {
  if (S_ISDIR(m)) return "directory";
  if (S_ISFIFO(m)) return "FIFO (named pipe)";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "character device";
  if (S_ISBLK(m)) return "block device";
  return "special file";
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void CheckRegularOrAbsent(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;  // absent (or a dangling link): the rename creates it
  ADALOG_CHECK(S_ISREG(st.st_mode), what, " '", path, "' exists and is a ", KindName(st.st_mode),
               ", not a regular file; adalog writes only regular files (give a file name)");
}

void WriteFileAtomically(const std::string& path, const std::string& bytes, const std::string& what) {
  CheckRegularOrAbsent(path, what);
  // The temporary name is private to this process; O_EXCL | O_NOFOLLOW never reuses or follows
  // something already there (a stale file of a crashed run with the same pid takes the next suffix).
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid())) +
          (attempt == 0 ? "" : "." + std::to_string(attempt));
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    Fail(what, " '", path, "': cannot create a file in directory '", DirectoryOf(path), "': ",
         std::strerror(errno));
  }
  auto fail = [&](const char* doing) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    Fail(what, " '", path, "': ", doing, ": ", std::strerror(err), "; the previous file, if any, is unchanged");
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed");
    done += static_cast<size_t>(n);
  }
  // On disk before it replaces the old file, so that a crash leaves one of the two complete.
  if (::fsync(fd) != 0) fail("write failed (fsync)");
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) fail("write failed (close)");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot replace it");
  const int dir = ::open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {  // best effort: make the rename itself durable
    ::fsync(dir);
    ::close(dir);
  }
}

}  // namespace adalog
