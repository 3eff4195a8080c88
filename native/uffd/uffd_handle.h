#pragma once
#include <napi.h>
namespace uffd {
void InitUffdHandle(Napi::Env env, Napi::Object exports);
}
