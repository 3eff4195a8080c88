#pragma once
#include <napi.h>
namespace uffd {
void InitPagemapScan(Napi::Env env, Napi::Object exports);
}
