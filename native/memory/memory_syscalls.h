#pragma once
#include <napi.h>
namespace uffd {
void InitMemorySyscalls(Napi::Env env, Napi::Object exports);
}
