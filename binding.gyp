{
  "targets": [
    {
      "target_name": "userfaultfd",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/uffd/uffd_handle.cc",
        "native/ioctls/range_ioctls.cc",
        "native/memory/memory_syscalls.cc",
        "native/memory/region_table.cc",
        "native/memory/guest_memfd.cc",
        "native/memory/pagemap_scan.cc",
        "native/faults/fault_reader.cc",
        "native/faults/fault_reader_binding.cc",
        "native/faults/loop_poll.cc",
        "native/testing/touch_threads.cc",
        "native/testing/thread_id.cc",
        "native/testing/fork_child.cc",
        "native/testing/stress_pages.cc",
        "native/testing/stress_threads.cc",
        "native/net/unix_socket.cc",
        "native/net/fd_poll.cc",
        "native/pager/pager_core.cc",
        "native/pager/pager_fill.cc",
        "native/pager/pager_shared.cc",
        "native/pager/pager_binding.cc",
        "native/testing/longterm_pin.cc",
        "native/testing/madvise_thread.cc",
        "native/testing/sigbus_catch.cc",
        "native/testing/sigbus_touch.cc",
        "native/testing/fork_sigbus_steps.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=9", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
