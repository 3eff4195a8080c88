#pragma once

#include <napi.h>

namespace uffd {

void InitFdPoll(Napi::Env env, Napi::Object exports);

}  // namespace uffd
