#pragma once
#include <napi.h>
namespace uffd {
void InitRangeIoctls(Napi::Env env, Napi::Object exports);
}
