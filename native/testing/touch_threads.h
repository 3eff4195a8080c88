#pragma once
#include <napi.h>
namespace uffd {
void InitTouchThreads(Napi::Env env, Napi::Object exports);
}
