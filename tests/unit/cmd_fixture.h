/*
 * Random metadata commands for unit tests of the state machine and its
 * durability (test_wal, test_checkpoint): a small namespace of a few names
 * in a few directories, so many commands fail (EEXIST, ENOENT, ENOTDIR...)
 * and the failing paths are exercised too.  Deterministic (xorshift).
 */
#ifndef TS_TEST_CMD_FIXTURE_H
#define TS_TEST_CMD_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "common/util.h"
#include "metadata/command.h"

static uint64_t rs = 0xdecafbad;
static uint32_t rnd(uint32_t n)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)(rs % n);
}

static void random_cmd(cmd *c)
{
    char name[16];
    memset(c, 0, sizeof(*c));
    snprintf(name, sizeof(name), "n%u", rnd(20));
    uint64_t dir = 1 + rnd(12), other = 1 + rnd(30);
    switch (rnd(6)) {
    case 0:
        c->type = CMD_MKDIR;
        c->u.mkdir.parent = dir;
        c->u.mkdir.name = ts_strdup(name);
        c->u.mkdir.mode = 0755;
        break;
    case 1:
        c->type = CMD_CREATE;
        c->u.create.parent = dir;
        c->u.create.name = ts_strdup(name);
        c->u.create.mode = 0644;
        break;
    case 2:
        c->type = CMD_UNLINK;
        c->u.unlink.parent = dir;
        c->u.unlink.name = ts_strdup(name);
        break;
    case 3:
        c->type = CMD_RENAME;
        c->u.rename.parent = dir;
        c->u.rename.name = ts_strdup(name);
        c->u.rename.new_parent = 1 + rnd(12);
        c->u.rename.new_name = ts_strdup("r");
        break;
    case 4: {
        c->type = CMD_COMMIT;
        c->u.commit.ino = other;
        c->u.commit.offset = rnd(1000);
        c->u.commit.length = 100;
        c->u.commit.n_extents = 1;
        c->u.commit.extents = ts_calloc(1, sizeof(ts_extent));
        c->u.commit.extents[0].file_offset = c->u.commit.offset;
        c->u.commit.extents[0].length = 100;
        memset(&c->u.commit.extents[0].chunk, (int)rnd(50), sizeof(ts_chunk_id));
        c->u.commit.n_chunks = 1;
        c->u.commit.chunks = ts_calloc(1, sizeof(ns_chunk_info));
        c->u.commit.chunks[0].id = c->u.commit.extents[0].chunk;
        c->u.commit.chunks[0].length = 4096;
        break;
    }
    default:
        c->type = CMD_SETATTR;
        c->u.setattr.ino = other;
        c->u.setattr.a.valid = NS_SETATTR_SIZE;
        c->u.setattr.a.size = rnd(2000);
        break;
    }
}

#endif
