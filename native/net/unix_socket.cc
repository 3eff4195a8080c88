// Unix-domain stream sockets with file-descriptor passing: one system call
// per function, all non-blocking. Waiting for readiness is fd_poll.cc's job
// (uv_poll on the environment's loop); the protocol, validation and error
// messages live in lib/net/.
//
// Every fd these functions create or receive is recorded in the
// environment's netFds and closed by its cleanup hook if JavaScript never
// closed it (a terminated Worker runs no JavaScript). netClose() and
// netDisown() take an fd out.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "../addon_state.h"
#include "../args.h"
#include "../errors.h"
#include "unix_socket.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace uffd {
namespace {

constexpr int kMaxFds = 253;  // SCM_MAX_FD

sockaddr_un AddressOf(const Napi::CallbackInfo& info, size_t i, socklen_t* len) {
  std::string path = info[i].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // lib/net checks the length first; this only keeps a bug from overflowing.
  if (path.size() >= sizeof addr.sun_path) ThrowErrno(info.Env(), ENAMETOOLONG, "bind");
  memcpy(addr.sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return addr;
}

int NewSocket(Napi::Env env) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, errno, "socket");
  return fd;
}

void Own(Napi::Env env, int fd) { StateOf(env).netFds.insert(fd); }

// unixListen(path, backlog, mode) -> fd. The socket inode's mode is set
// before bind(): the kernel creates the file with that mode (less the
// umask), so there is no moment at which it is more open than `mode`, and
// the process-wide umask is never touched (other threads may create files).
// The umask can only take bits away, never add any.
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  Napi::Env env = info.Env();
  socklen_t len = 0;
  sockaddr_un addr = AddressOf(info, 0, &len);
  int fd = NewSocket(env);
  const char* failed = nullptr;
  if (fchmod(fd, static_cast<mode_t>(IntArg(info, 2))) < 0) {
    failed = "fchmod";
  } else if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    failed = "bind";
  } else if (listen(fd, static_cast<int>(IntArg(info, 1))) < 0) {
    failed = "listen";
  }
  if (failed) {
    int err = errno;
    if (strcmp(failed, "fchmod") != 0 && strcmp(failed, "bind") != 0) unlink(addr.sun_path);
    close(fd);
    ThrowErrno(env, err, failed);
  }
  Own(env, fd);
  return Napi::Number::New(env, fd);
}

// unixConnect(path) -> fd. A Unix stream connect completes at once or fails
// (EAGAIN when the listener's backlog is full: lib/net retries).
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  Napi::Env env = info.Env();
  socklen_t len = 0;
  sockaddr_un addr = AddressOf(info, 0, &len);
  int fd = NewSocket(env);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "connect");
  }
  Own(env, fd);
  return Napi::Number::New(env, fd);
}

// unixAccept(fd) -> fd, or -1 when no connection is pending.
Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  Napi::Env env = info.Env();
  int fd = accept4(FdArg(info, 0), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR) {
      return Napi::Number::New(env, -1);
    }
    ThrowErrno(env, errno, "accept4");
  }
  Own(env, fd);
  return Napi::Number::New(env, fd);
}

// peerCredentials(fd) -> [pid, uid, gid] of the peer when it connected.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  Napi::Env env = info.Env();
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(FdArg(info, 0), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) ThrowErrno(env, errno, "getsockopt(SO_PEERCRED)");
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, cred.pid));
  out.Set(1u, Napi::Number::New(env, cred.uid));
  out.Set(2u, Napi::Number::New(env, cred.gid));
  return out;
}

// peerPidfd(fd) -> a pidfd of the peer process (readable once it exits).
// SO_PEERPIDFD (6.5+) names the very process that connected; the fallback,
// pidfd_open(SO_PEERCRED pid), could name a recycled pid if the peer has
// already exited, so lib/ uses it only right after accept.
Napi::Value PeerPidfd(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  Napi::Env env = info.Env();
  int sock = FdArg(info, 0);
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) {
    if (errno != ENOPROTOOPT && errno != EINVAL) ThrowErrno(env, errno, "getsockopt(SO_PEERPIDFD)");
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) ThrowErrno(env, errno, "getsockopt(SO_PEERCRED)");
    pidfd = static_cast<int>(syscall(SYS_pidfd_open, cred.pid, 0));
    if (pidfd < 0) ThrowErrno(env, errno, "pidfd_open");
  }
  // pidfds are close-on-exec already; non-blocking is irrelevant (only polled).
  Own(env, pidfd);
  return Napi::Number::New(env, pidfd);
}

// sendFds(fd, bytes, offset, length, fds) -> bytes sent, or -1 when the
// socket buffer is full. The fds go with the first byte; MSG_NOSIGNAL so a
// closed peer is EPIPE, not a SIGPIPE that kills the process.
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 5);
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t available = 0;
  if (!BytesOf(info[1], &data, &available)) throw Napi::TypeError::New(env, "native: bytes must be a Buffer");
  size_t offset = UintArg(info, 2);
  size_t length = UintArg(info, 3);
  if (offset > available || length > available - offset) throw Napi::RangeError::New(env, "native: bytes out of range");
  Napi::Array fdList = info[4].As<Napi::Array>();
  std::vector<int> fds(fdList.Length());
  if (fds.size() > kMaxFds) ThrowErrno(env, EINVAL, "sendmsg");
  for (uint32_t i = 0; i < fds.size(); i++) fds[i] = fdList.Get(i).As<Napi::Number>().Int32Value();

  iovec iov{data + offset, length};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())), 0);
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(FdArg(info, 0), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowErrno(env, errno, "sendmsg");
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// recvFds(fd, buffer, maxFds) -> null when nothing is pending, else
// [bytes, fds, truncated]. bytes 0 is end of stream. Received fds are
// close-on-exec (MSG_CMSG_CLOEXEC) and owned by this environment. When the
// control data was truncated (MSG_CTRUNC: more fds than maxFds) the fds that
// did arrive are closed here and `truncated` is true: lib/ throws.
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 3);
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t length = 0;
  if (!BytesOf(info[1], &data, &length)) throw Napi::TypeError::New(env, "native: buffer must be a Buffer");
  size_t maxFds = UintArg(info, 2);
  if (maxFds > kMaxFds) maxFds = kMaxFds;
  iovec iov{data, length};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds ? maxFds : 1)), 0);
  if (maxFds > 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * maxFds);
  }
  ssize_t n;
  do {
    n = recvmsg(FdArg(info, 0), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, errno, "recvmsg");
  }
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.push_back(fd);
    }
  }
  bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  Napi::Array fdList = Napi::Array::New(env, truncated ? 0 : fds.size());
  for (size_t i = 0; i < fds.size(); i++) {
    if (truncated) {
      close(fds[i]);
    } else {
      Own(env, fds[i]);
      fdList.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
    }
  }
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(n)));
  out.Set(1u, fdList);
  out.Set(2u, Napi::Boolean::New(env, truncated));
  out.Set(3u, Napi::Number::New(env, static_cast<double>(fds.size())));
  return out;
}

// pidfdOpen(pid) -> pidfd.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  int fd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(IntArg(info, 0)), 0));
  if (fd < 0) ThrowErrno(info.Env(), errno, "pidfd_open");
  Own(info.Env(), fd);
  return Napi::Number::New(info.Env(), fd);
}

// setNonBlocking(fd, on) -> the previous O_NONBLOCK state. The flag belongs to
// the open file description, which a received fd shares with its sender.
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  int fd = FdArg(info, 0);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) ThrowErrno(info.Env(), errno, "fcntl(F_GETFL)");
  int wanted = info[1].ToBoolean() ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && fcntl(fd, F_SETFL, wanted) < 0) ThrowErrno(info.Env(), errno, "fcntl(F_SETFL)");
  return Napi::Boolean::New(info.Env(), (flags & O_NONBLOCK) != 0);
}

// netOwn(fd): an fd lib/ obtained elsewhere that this environment must close
// at teardown if JavaScript does not.
Napi::Value NetOwn(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  Own(info.Env(), FdArg(info, 0));
  return info.Env().Undefined();
}

// netDisown(fd): ownership moves elsewhere (e.g. a Userfaultfd adopts it).
Napi::Value NetDisown(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  StateOf(info.Env()).netFds.erase(FdArg(info, 0));
  return info.Env().Undefined();
}

// netClose(fd).
Napi::Value NetClose(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 1);
  int fd = FdArg(info, 0);
  StateOf(info.Env()).netFds.erase(fd);
  if (close(fd) < 0) ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

void CloseNetFds(void* arg) {
  auto* state = static_cast<AddonState*>(arg);
  for (int fd : state->netFds) close(fd);
  state->netFds.clear();
}

}  // namespace

void InitUnixSocket(Napi::Env env, Napi::Object exports) {
  napi_add_env_cleanup_hook(env, CloseNetFds, &StateOf(env));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept, "unixAccept"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("peerPidfd", Napi::Function::New(env, PeerPidfd, "peerPidfd"));
  exports.Set("sendFds", Napi::Function::New(env, SendFds, "sendFds"));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds, "recvFds"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
  exports.Set("netOwn", Napi::Function::New(env, NetOwn, "netOwn"));
  exports.Set("netDisown", Napi::Function::New(env, NetDisown, "netDisown"));
  exports.Set("netClose", Napi::Function::New(env, NetClose, "netClose"));
}

}  // namespace uffd
