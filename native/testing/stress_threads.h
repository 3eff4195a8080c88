#pragma once
#include <napi.h>
namespace uffd {
void InitStressThreads(Napi::Env env, Napi::Object exports);
}
