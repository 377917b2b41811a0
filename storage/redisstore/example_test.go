package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage/redisstore"
)

// Every application server runs the same code against the same Redis and
// prefix; an update made through any of them is never lost by the others.
// (It needs a Redis at localhost:6379, so it is compiled but not run.)
func Example() {
	ctx := context.Background()
	store, err := redisstore.New(ctx, "redis://localhost:6379/0", redisstore.Options{Prefix: "shop:"})
	if err != nil {
		log.Fatal(err) // Redis is unreachable, or the URL is wrong
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close(ctx) // closes the store too

	visits, err := engine.RegisterRaw(eng, "visits", engine.KindOptions{
		Storage:     store,
		IdleTimeout: 30 * time.Minute, // Redis drops the key after 30 idle minutes
	})
	if err != nil {
		log.Fatal(err)
	}
	id, err := visits.Create(ctx, []byte("0"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := visits.Update(ctx, id, func(old []byte) ([]byte, error) {
		n, err := strconv.Atoi(string(old))
		return strconv.AppendInt(nil, int64(n+1), 10), err
	})
	if err != nil {
		log.Fatal(err) // wraps engine.ErrStorage while Redis is down: answer 503
	}
	fmt.Printf("%s\n", v)
}
