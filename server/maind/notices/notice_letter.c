// SPDX-License-Identifier: GPL-2.0
/* Post: PDF letters with cairo (notice_letter.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cairo.h>
#include <cairo-pdf.h>

#include "atomic_file.h"
#include "notice_letter.h"

/* A4 in points; margins and the window of a DL envelope (20 mm from the left, 45 mm down) */
#define PAGE_W		595.28
#define PAGE_H		841.89
#define LEFT		70.0
#define RIGHT		56.0
#define TOP		56.0
#define BOTTOM		72.0
#define WINDOW_Y	135.0
#define BODY_PT		10.5
#define LINE		15.0
#define FONT		"DejaVu Sans"

struct line {
	char *text;
	double y;
	unsigned page;
	bool bold;
};

struct layout {
	cairo_t *cr;
	struct line *l;
	size_t n, cap;
	unsigned page;
	double y;
	bool failed;
};

static void add_line(struct layout *lo, const char *s, size_t n, bool bold)
{
	if (lo->y > PAGE_H - BOTTOM) {
		lo->page++;
		lo->y = TOP + LINE;
	}
	if (lo->n == lo->cap) {
		size_t cap = lo->cap ? lo->cap * 2 : 64;
		struct line *l = realloc(lo->l, cap * sizeof(*l));

		if (!l) {
			lo->failed = true;
			return;
		}
		lo->l = l;
		lo->cap = cap;
	}
	lo->l[lo->n] = (struct line){ strndup(s, n), lo->y, lo->page, bold };
	if (!lo->l[lo->n].text)
		lo->failed = true;
	lo->n++;
	lo->y += LINE;
}

static double width_of(cairo_t *cr, const char *s, size_t n)
{
	char *t = strndup(s, n);
	cairo_text_extents_t e = { 0 };

	if (t)
		cairo_text_extents(cr, t, &e);
	free(t);
	return e.x_advance;
}

/* Bytes of the first UTF-8 character of s. */
static size_t char_len(const char *s)
{
	size_t k = 1;

	while (s[k] && ((unsigned char)s[k] & 0xc0) == 0x80)
		k++;
	return k;
}

/* One paragraph, wrapped at spaces (a word wider than the line is cut). */
static void paragraph(struct layout *lo, const char *p, size_t n, bool bold)
{
	double width = PAGE_W - LEFT - RIGHT;

	if (!n) {
		add_line(lo, "", 0, bold);
		return;
	}
	while (n) {
		size_t take = 0, last_space = 0;

		while (take < n) {
			size_t k = char_len(p + take);

			if (take + k > n)
				k = n - take;
			if (width_of(lo->cr, p, take + k) > width)
				break;
			take += k;
			if (take < n && p[take] == ' ')
				last_space = take;
		}
		if (take < n && last_space)
			take = last_space;
		if (!take)
			take = char_len(p) < n ? char_len(p) : n;
		add_line(lo, p, take, bold);
		p += take;
		n -= take;
		while (n && *p == ' ') {
			p++;
			n--;
		}
	}
}

static void text_block(struct layout *lo, const char *s, char sep, bool bold)
{
	while (*s) {
		const char *e = strchr(s, sep);
		size_t n = e ? (size_t)(e - s) : strlen(s);

		paragraph(lo, s, n && s[n - 1] == '\r' ? n - 1 : n, bold);
		s += n;
		if (*s)
			s++;
	}
}

static void font(cairo_t *cr, bool bold, double pt)
{
	cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, pt);
}

struct mem {
	unsigned char *p;
	size_t len, cap;
	bool failed;
};

static cairo_status_t to_mem(void *arg, const unsigned char *data, unsigned int n)
{
	struct mem *m = arg;

	if (m->len + n > m->cap) {
		size_t cap = (m->len + n) * 2;
		unsigned char *p = realloc(m->p, cap);

		if (!p) {
			m->failed = true;
			return CAIRO_STATUS_WRITE_ERROR;
		}
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, data, n);
	m->len += n;
	return CAIRO_STATUS_SUCCESS;
}

static void right_text(cairo_t *cr, const char *s, double y)
{
	cairo_text_extents_t e;

	cairo_text_extents(cr, s, &e);
	cairo_move_to(cr, PAGE_W - RIGHT - e.x_advance, y);
	cairo_show_text(cr, s);
}

unsigned char *letter_pdf(const struct letter_in *in, size_t *len, unsigned *pages)
{
	struct mem m = { 0 };
	cairo_surface_t *s = cairo_pdf_surface_create_for_stream(to_mem, &m, PAGE_W, PAGE_H);
	cairo_t *cr = cairo_create(s);
	struct layout lo = { .cr = cr, .y = WINDOW_Y };
	char date[64], foot[96];
	time_t t = (time_t)in->date;
	struct tm tm;
	size_t i = 0;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%e %B %Y", &tm);
	cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, in->subject);
	cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "gridmeter maind-notify");
	/* lay out: the address block, then the date line, subject and body */
	font(cr, false, BODY_PT);
	text_block(&lo, in->to_name, '\n', false);
	text_block(&lo, in->address, '\n', false);
	lo.y = lo.y < WINDOW_Y + 8 * LINE ? WINDOW_Y + 8 * LINE : lo.y + LINE;
	size_t date_at = lo.n;

	add_line(&lo, date + (date[0] == ' '), strlen(date + (date[0] == ' ')), false);
	lo.y += LINE;
	font(cr, true, BODY_PT);
	text_block(&lo, in->subject, '\n', true);
	lo.y += LINE / 2;
	font(cr, false, BODY_PT);
	text_block(&lo, in->body, '\n', false);
	if (lo.failed)
		goto out;
	*pages = lo.page + 1;
	/* render */
	for (unsigned pg = 0; pg <= lo.page; pg++) {
		if (pg == 0) {
			double y = TOP;

			font(cr, false, 8);
			for (const char *p = in->sender; *p;) {
				size_t n = strcspn(p, "|");
				char *one = strndup(p, n);

				if (one)
					right_text(cr, one, y);
				free(one);
				y += 10;
				p += n;
				if (*p)
					p++;
			}
		}
		for (; i < lo.n && lo.l[i].page == pg; i++) {
			font(cr, lo.l[i].bold, BODY_PT);
			if (i == date_at) {
				right_text(cr, lo.l[i].text, lo.l[i].y);
				continue;
			}
			cairo_move_to(cr, LEFT, lo.l[i].y);
			cairo_show_text(cr, lo.l[i].text);
		}
		font(cr, false, 8);
		snprintf(foot, sizeof(foot), "Notice %lld  -  page %u of %u", (long long)in->notice,
			 pg + 1, lo.page + 1);
		right_text(cr, foot, PAGE_H - BOTTOM / 2);
		cairo_show_page(cr);
	}
out:
	cairo_destroy(cr);
	cairo_surface_finish(s);
	if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS)
		m.failed = true;
	cairo_surface_destroy(s);
	for (size_t k = 0; k < lo.n; k++)
		free(lo.l[k].text);
	free(lo.l);
	if (lo.failed || m.failed) {
		free(m.p);
		return NULL;
	}
	*len = m.len;
	return m.p;
}

int letter_spool(const char *dir, int64_t notice, const unsigned char *pdf, size_t len,
		 char *path, size_t pathlen, char *err, size_t errlen)
{
	struct atomic_file a;
	int r;

	if ((size_t)snprintf(path, pathlen, "%s/notice-%lld.pdf", dir, (long long)notice) >=
	    pathlen) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	r = atomic_file_open(&a, path, 0640);
	if (!r)
		r = atomic_file_write(&a, pdf, len);
	if (!r)
		r = atomic_file_commit(&a, 0);
	else
		atomic_file_abort(&a);
	if (r) {
		snprintf(err, errlen, "%s: %s: %s", path, a.step, strerror(-r));
		return -1;
	}
	return 0;
}
