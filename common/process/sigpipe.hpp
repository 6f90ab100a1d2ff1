#pragma once

namespace tide {

// Writing to a socket or pipe whose reader has gone raises SIGPIPE, and its
// default action kills the process without a word. Everything that writes to
// a peer that can vanish (HAProxy's runtime socket, a script's stdin, an
// application's probe port) calls this first, so that such a write fails with
// EPIPE instead, whatever binary the code runs in (daemon or test). A handler
// someone installed on purpose is left alone. Thread-safe; idempotent.
void ignore_sigpipe();

}  // namespace tide
