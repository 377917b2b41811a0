// Linecount serves Steward sessions over a line protocol on TCP: an example
// of a transport that is not HTTP, wired to the engine through the
// byte-level API (engine.RegisterRaw and *engine.RawKind).
//
// Each session is a counter, stored as its decimal digits. The client holds
// only the session ID, as a browser holds a cookie; the value lives in the
// server's storage (here storage.Memory), and every INCR runs inside the
// session's actor, so concurrent clients never lose an update.
//
// # Usage
//
//	go run ./examples/linecount [-addr 127.0.0.1:7070] [-idle 5m] [-v]
//
// It prints "listening on ADDR" once it accepts connections, logs only
// warnings and errors to stderr unless -v is given, and on SIGINT or
// SIGTERM closes every connection and drains the engine.
//
// # Protocol
//
// One ASCII command per line (ended by "\n" or "\r\n"), one reply line
// (ended by "\r\n") per command, in order; commands may be pipelined. Verbs
// are case-insensitive, session IDs are not.
//
//	NEW          OK <id>         start a session holding 0
//	GET <id>     OK <n>          read the counter
//	INCR <id>    OK <n>          add one, atomically, and return the new value
//	RENEW <id>   OK <newid>      move the session to a new ID; the old ID
//	                             answers ERR renewed from then on
//	DEL <id>     OK              end the session (also for an unknown ID); an
//	                             old ID within its grace period ends the
//	                             renewed session too
//	QUIT         OK bye          and the server closes the connection
//
// Errors:
//
//	ERR no session       the ID is unknown, expired, ended or malformed
//	ERR renewed          the ID was renewed (RENEW): use the new one; the
//	                     old one reaches nothing but DEL during its grace
//	                     period, and nothing after it
//	ERR unknown command  any other line, including a missing or extra argument
//	ERR line too long    a line over 1 KiB; the server closes the connection
//	ERR overflow         INCR of a counter at the largest int64
//	ERR unavailable      the storage failed, or the server is shutting down
//
// A connection that sends no complete line for the idle timeout (-idle,
// five minutes by default) is closed without a reply.
//
// # Trying it
//
// In one terminal:
//
//	go run ./examples/linecount
//
// In another:
//
//	$ nc 127.0.0.1 7070
//	NEW
//	OK 0b8a4c1e-7d7f-4a53-9a0e-3f1c2d9b6e41
//	INCR 0b8a4c1e-7d7f-4a53-9a0e-3f1c2d9b6e41
//	OK 1
//	RENEW 0b8a4c1e-7d7f-4a53-9a0e-3f1c2d9b6e41
//	OK 5e2f7d90-1c3b-4e8a-b6d4-92a7c0f1e358
//	GET 0b8a4c1e-7d7f-4a53-9a0e-3f1c2d9b6e41
//	OK 1
//	QUIT
//	OK bye
package main
