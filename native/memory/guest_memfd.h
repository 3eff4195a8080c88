#pragma once
#include <napi.h>
namespace uffd {
void InitGuestMemfd(Napi::Env env, Napi::Object exports);
}
