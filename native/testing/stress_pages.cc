// stressSession / stressInit / stressVerify: the pages of the uffd-stress
// equivalent (layout in stress_pages.h), written and checked on the JS
// thread between bounces.
#include <cstring>
#include <string>

#include "../args.h"
#include "stress_pages.h"

namespace uffd {
namespace stress {

static Napi::Value BigU64(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

Napi::Object MismatchObject(Napi::Env env, const Mismatch& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("page", Napi::Number::New(env, static_cast<double>(m.page)));
  o.Set("field", Napi::String::New(env, kFieldNames[m.field]));
  o.Set("expected", BigU64(env, m.expected));
  o.Set("actual", BigU64(env, m.actual));
  return o;
}

SessionRef& SessionArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsExternal()) throw Napi::TypeError::New(info.Env(), "native: argument " + std::to_string(i) + " must be a stress session");
  return *info[i].As<Napi::External<SessionRef>>().Data();
}

}  // namespace stress

namespace {

using namespace stress;

// stressSession(pageSize, nrPages) -> an opaque session (countVerify lives here).
Napi::Value StressSession(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  auto session = std::make_shared<Session>();
  session->pageSize = UintArg(info, 0);
  session->nrPages = UintArg(info, 1);
  if (session->pageSize < 4096 || session->pageSize % 8 != 0 || session->nrPages == 0) {
    throw Napi::RangeError::New(info.Env(), "native: bad stress session geometry");
  }
  session->countVerify.assign(session->nrPages, 1);
  return Napi::External<SessionRef>::New(info.Env(), new SessionRef(session),
                                         [](Napi::Env, SessionRef* ref) { delete ref; });
}

// stressInit(session, address): writes every page's header (unlocked mutex,
// count 1, index, magic) and pattern, and resets countVerify to 1.
Napi::Value StressInit(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  Session& s = *SessionArg(info, 0);
  uintptr_t area = UintArg(info, 1);
  if (s.running.load()) throw Napi::Error::New(info.Env(), "native: a bounce is running on this session");
  const size_t words = s.pageSize / 8;
  for (uint64_t page = 0; page < s.nrPages; page++) {
    PageHeader* h = HeaderOf(area, s, page);
    pthread_mutex_init(&h->mutex, nullptr);
    h->count = 1;
    h->index = page;
    h->magic = kMagic;
    auto* w = reinterpret_cast<uint64_t*>(h);
    for (size_t i = FirstPatternWord(); i < words; i++) w[i] = PatternWord(page, i);
    s.countVerify[page] = 1;
  }
  return info.Env().Undefined();
}

// stressVerify(session, address) -> null, or the first wrong field and the
// number of wrong pages. Every mutex must be unlocked by now.
Napi::Value StressVerify(const Napi::CallbackInfo& info) {
  CheckArgCount(info, 2);
  Session& s = *SessionArg(info, 0);
  uintptr_t area = UintArg(info, 1);
  if (s.running.load()) throw Napi::Error::New(info.Env(), "native: a bounce is running on this session");
  const size_t words = s.pageSize / 8;
  Mismatch first;
  uint64_t badPages = 0;
  for (uint64_t page = 0; page < s.nrPages; page++) {
    const PageHeader* h = HeaderOf(area, s, page);
    Mismatch m;
    // glibc: the first int of the mutex is the lock word, 0 when unlocked.
    int lockWord;
    memcpy(&lockWord, &h->mutex, sizeof lockWord);
    if (h->magic != kMagic) {
      m = {true, page, kFieldMagic, kMagic, h->magic};
    } else if (h->index != page) {
      m = {true, page, kFieldIndex, page, h->index};
    } else if (h->count != s.countVerify[page]) {
      m = {true, page, kFieldCount, s.countVerify[page], h->count};
    } else if (lockWord != 0) {
      m = {true, page, kFieldMutex, 0, static_cast<uint64_t>(static_cast<uint32_t>(lockWord))};
    } else {
      auto* w = reinterpret_cast<const uint64_t*>(h);
      for (size_t i = FirstPatternWord(); i < words; i++) {
        if (w[i] != PatternWord(page, i)) {
          m = {true, page, kFieldPattern, PatternWord(page, i), w[i]};
          break;
        }
      }
    }
    if (m.found) {
      if (!first.found) first = m;
      badPages++;
    }
  }
  if (!first.found) return info.Env().Null();
  Napi::Object r = MismatchObject(info.Env(), first);
  r.Set("badPages", Napi::Number::New(info.Env(), static_cast<double>(badPages)));
  return r;
}

}  // namespace

void InitStressPages(Napi::Env env, Napi::Object exports) {
  exports.Set("stressSession", Napi::Function::New(env, StressSession, "stressSession"));
  exports.Set("stressInit", Napi::Function::New(env, StressInit, "stressInit"));
  exports.Set("stressVerify", Napi::Function::New(env, StressVerify, "stressVerify"));
}

}  // namespace uffd
