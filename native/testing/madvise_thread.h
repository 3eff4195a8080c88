#pragma once
#include <napi.h>
namespace uffd {
void InitMadviseThread(Napi::Env env, Napi::Object exports);
}
