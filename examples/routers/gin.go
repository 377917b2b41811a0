package main

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/steward-sessions/steward/transport/ginsteward"
)

// ginHandler is the app on a gin router, through ginsteward.Middleware: gin's
// writer sends the headers on calls net/http's middleware never sees
// (c.AbortWithStatus, c.Writer.WriteString, ...), and the adapter routes
// each of them through the session middleware. The binding is in
// c.Request.Context(), not in c.
func (a *app) ginHandler() http.Handler {
	r := gin.New()
	r.Use(ginsteward.Middleware(a.sessions))
	r.GET("/count", func(c *gin.Context) {
		v, err := a.count(c.Request.Context())
		if err != nil {
			a.ginError(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	})
	r.POST("/add/:n", func(c *gin.Context) {
		v, err := a.add(c.Request.Context(), c.Param("n"))
		if err != nil {
			a.ginError(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := a.logout(c.Request.Context()); err != nil {
			a.ginError(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	})
	return r
}

// ginError answers a gin request with err's failure.
func (a *app) ginError(c *gin.Context, err error) {
	status, msg := a.failure(err)
	c.AbortWithStatusJSON(status, gin.H{"message": msg})
}
