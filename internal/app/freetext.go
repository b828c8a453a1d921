package app

import "github.com/plusranger/dpp/internal/freetext"

// FreeTexts seals, reads and erases the free texts the evidence log refers to
// (Database, Sealing).
func (a *App) FreeTexts() *freetext.Store {
	return &freetext.Store{Pool: a.Pool, Vault: a.Vault, Signer: a.Signer}
}
