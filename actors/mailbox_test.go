package actors

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// goid returns the current goroutine's number, from its stack header.
func goid() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	n, _ := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	return n
}

// recorder is a MessageInvoker that records where and in which order
// messages ran; a message that is a channel blocks until it is closed.
type recorder struct {
	mu   sync.Mutex
	runs []run
	done chan struct{} // receives after every message
}

type run struct {
	msg    any
	system bool
	g      int
}

func newRecorder() *recorder { return &recorder{done: make(chan struct{}, 100)} }

func (r *recorder) record(msg any, system bool) {
	if c, ok := msg.(chan struct{}); ok {
		<-c
	}
	r.mu.Lock()
	r.runs = append(r.runs, run{msg, system, goid()})
	r.mu.Unlock()
	r.done <- struct{}{}
}

func (r *recorder) InvokeSystemMessage(msg any)   { r.record(msg, true) }
func (r *recorder) InvokeUserMessage(msg any)     { r.record(msg, false) }
func (r *recorder) EscalateFailure(reason, _ any) { panic(reason) }

func (r *recorder) wait(t *testing.T, n int) []run {
	t.Helper()
	for range n {
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run(nil), r.runs...)
}

func newTestMailbox(inline bool, e *entry) (*fairMailbox, *recorder) {
	m := &fairMailbox{inline: inline, e: e, now: time.Now}
	r := newRecorder()
	m.RegisterHandlers(r, nil)
	return m, r
}

// TestMailboxSenderRunsOnlyItsOwn: on an idle mailbox of a storage that
// never blocks, the sender runs its own operation; a message posted while
// one runs is queued, its sender returns at once, and a goroutine of the
// mailbox's own runs it afterwards.
func TestMailboxSenderRunsOnlyItsOwn(t *testing.T) {
	m, r := newTestMailbox(true, nil)
	me := goid()
	m.PostUserMessage(&Op{})
	if runs := r.wait(t, 1); runs[0].g != me {
		t.Fatal("an operation on an idle inline mailbox did not run on its sender")
	}
	gate := make(chan struct{})
	go func() {
		m.PostUserMessage(gate) // runs inline on this goroutine and blocks
	}()
	waitUntil(t, func() bool { return m.UserMessageCount() == 0 && running(m) })
	other := make(chan int)
	go func() {
		m.PostUserMessage(&Op{Code: OpUpdate}) // must only queue
		other <- goid()
	}()
	sender := <-other
	close(gate)
	runs := r.wait(t, 2)
	if last := runs[len(runs)-1]; last.g == sender || last.g == me {
		t.Fatalf("the queued operation ran on a sender's goroutine (%d)", last.g)
	}
}

// TestMailboxBlockingNeverInline: for a storage that may block, neither an
// update nor a passivation runs on the sender; a read runs there only
// while the actor has declared it free of I/O.
func TestMailboxBlockingNeverInline(t *testing.T) {
	e := &entry{}
	m, r := newTestMailbox(false, e)
	me := goid()
	m.PostUserMessage(&Op{Code: OpUpdate})
	m.PostUserMessage(passivate{})
	m.PostUserMessage(&Op{Code: OpGet}) // inlineUntil 0: not declared
	for _, run := range r.wait(t, 3) {
		if run.g == me {
			t.Fatalf("%T ran on its sender for a blocking storage", run.msg)
		}
	}
	waitUntil(t, func() bool { return !running(m) })
	e.inlineUntil.Store(time.Now().Add(time.Hour).UnixNano())
	op := &Op{Code: OpGet}
	m.PostUserMessage(op)
	if runs := r.wait(t, 1); runs[len(runs)-1].g != me || op.now == 0 {
		t.Fatal("a read declared free of I/O did not run on its sender, judged at one instant")
	}
	e.inlineUntil.Store(time.Now().Add(-time.Second).UnixNano())
	m.PostUserMessage(&Op{Code: OpGet})
	if runs := r.wait(t, 1); runs[len(runs)-1].g == me {
		t.Fatal("a read past its declared instant ran on its sender")
	}
}

// TestMailboxSystemFirst: system messages queued behind a running message
// go before the user messages queued with them, and Suspend holds user
// messages back until Resume.
func TestMailboxSystemFirst(t *testing.T) {
	m, r := newTestMailbox(true, nil)
	gate := make(chan struct{})
	go m.PostUserMessage(gate)
	waitUntil(t, func() bool { return running(m) })
	m.PostUserMessage("user")
	m.PostSystemMessage("system")
	close(gate)
	runs := r.wait(t, 3)
	if runs[1].msg != "system" || runs[2].msg != "user" {
		t.Fatalf("order %v, want the system message before the user message", runs)
	}
	waitUntil(t, func() bool { return !running(m) })
	m.PostSystemMessage(&actor.SuspendMailbox{})
	m.PostUserMessage("held")
	if n := m.UserMessageCount(); n != 1 {
		t.Fatalf("%d user messages queued while suspended, want 1", n)
	}
	m.PostSystemMessage(&actor.ResumeMailbox{})
	m.PostUserMessage("after") // resumes the drain
	runs = r.wait(t, 2)
	if runs[3].msg != "held" || runs[4].msg != "after" {
		t.Fatalf("after resume: %v", runs[3:])
	}
}

func running(m *fairMailbox) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

// waitUntil polls cond: the mailbox gives no signal for "a goroutine is
// now blocked inside it", which is what these tests wait for.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never reached")
		}
		runtime.Gosched()
	}
}
