#pragma once
#include <napi.h>
namespace uffd {
void InitThreadId(Napi::Env env, Napi::Object exports);
}
