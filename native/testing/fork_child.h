#pragma once
#include <napi.h>
namespace uffd {
void InitForkChild(Napi::Env env, Napi::Object exports);
}
