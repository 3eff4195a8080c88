#pragma once
#include <napi.h>
namespace uffd {
void InitSigbusTouch(Napi::Env env, Napi::Object exports);
}
