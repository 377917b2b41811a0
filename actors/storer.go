package actors

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

type storageCode uint8

const (
	stRead storageCode = iota
	stWrite
	stDelete
)

func (c storageCode) String() string {
	switch c {
	case stRead:
		return "read"
	case stWrite:
		return "write"
	default:
		return "invalidate"
	}
}

// storageReq is one storage call, sent by a session actor to the storage
// actor that owns the ID's hash. Two calls for one ID always go to the same
// storage actor, in the order their session actor made them.
type storageReq struct {
	kind    *Kind
	code    storageCode
	id      string
	data    []byte
	expires int64
	version uint64 // stWrite on a Versioned storage: the version expected
	ctx     context.Context
	reply   chan storageResult
}

type storageResult struct {
	data    []byte
	version uint64 // the version read or written; on a conflict, the current one
	err     error
}

// storageActor does storage I/O. The number of storage actors bounds how
// many storage calls run at once; a slow call delays only the sessions
// hashed to the same storage actor.
type storageActor struct{ sys *System }

// Receive implements actor.Actor.
func (st *storageActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *storageReq:
		m.reply <- m.do()
	case *actor.Stopped:
		st.sys.storersWG.Done()
	}
}

func (r *storageReq) do() (res storageResult) {
	defer func() {
		if p := recover(); p != nil {
			res = storageResult{err: fmt.Errorf("storage panicked: %v", p)}
		}
	}()
	// The caller may stop waiting, but a storage call that started runs to
	// its end so that the session actor's view matches the storage.
	ctx := r.ctx
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	b, v := r.kind.bytes, r.kind.versioned
	switch {
	case r.code == stRead && v != nil:
		res.data, res.version, res.err = v.LoadVersioned(ctx, r.id)
	case r.code == stRead:
		res.data, res.err = b.Load(ctx, r.id)
	case r.code == stWrite && v != nil:
		var cur []byte
		var curVersion uint64
		res.version, cur, curVersion, res.err = v.SaveIf(ctx, r.id, r.data, unixTime(r.expires), r.version)
		if res.err != nil {
			res.data, res.version = cur, curVersion
		}
	case r.code == stWrite:
		res.err = b.Save(ctx, r.id, r.data, unixTime(r.expires))
	default:
		res.err = b.Delete(ctx, r.id)
	}
	return res
}
