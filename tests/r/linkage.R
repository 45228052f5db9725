# Reference values for tests/test_linkage.py (exresearch.linkage).
#
# Run from the repository root:   Rscript tests/r/linkage.R
# Writes tests/data/linkage_attitude.csv, linkage_mtcars.csv, linkage_panel.csv
# and tests/data/linkage_reference.json. The Python tests never call R.
#
# Data:
#   * attitude (R datasets): Chatterjee & Price (1977), a survey of clerical
#     employees of a large financial organisation, 30 departments; each value is
#     the % favourable in the department. A real unit-level EX data set.
#   * mtcars (R datasets): the published worked example of relative weights in
#     the rwa package README (mpg ~ cyl + disp + hp + gear).
#   * a simulated unit x period panel (set.seed below) with planted cross-lagged
#     paths and some missing values.
# Packages: stats, sandwich (vcovCL), lavaan, jsonlite.

suppressPackageStartupMessages({
  library(jsonlite)
  library(sandwich)
  library(lavaan)
})

out_dir <- file.path("tests", "data")
ref <- list(meta = list(R = R.version.string,
                        lavaan = as.character(packageVersion("lavaan")),
                        sandwich = as.character(packageVersion("sandwich"))))

# ------------------------------------------------------------------ data sets
att_path <- file.path(out_dir, "linkage_attitude.csv")
write.csv(data.frame(unit_id = sprintf("dept%02d", seq_len(nrow(attitude))), attitude),
          att_path, row.names = FALSE)
att <- read.csv(att_path)

mt_path <- file.path(out_dir, "linkage_mtcars.csv")
write.csv(data.frame(unit_id = rownames(mtcars), mtcars), mt_path, row.names = FALSE)
mt <- read.csv(mt_path)

set.seed(20261125)
J <- 40; periods <- c("2022", "2023", "2024", "2025")
ex <- matrix(NA_real_, J, 4); cx <- matrix(NA_real_, J, 4)
ex[, 1] <- rnorm(J); cx[, 1] <- 0.4 * ex[, 1] + rnorm(J)
for (t in 2:4) {
  ex[, t] <- 0.5 * ex[, t - 1] + 0.2 * cx[, t - 1] + rnorm(J, sd = 0.8)
  cx[, t] <- 0.5 * cx[, t - 1] + 0.3 * ex[, t - 1] + rnorm(J, sd = 0.8)
}
panel <- data.frame(unit_id = rep(sprintf("u%02d", 1:J), each = 4),
                    period = rep(periods, J),
                    ex = round(as.vector(t(ex)), 6), cx = round(as.vector(t(cx)), 6))
panel$headcount <- round(runif(nrow(panel), 8, 60))
panel$engagement <- round(0.6 * panel$ex + rnorm(nrow(panel), sd = 0.8), 6)
panel$ex[c(7, 50, 93)] <- NA          # missing answers (suppressed unit-periods)
panel$cx[c(12, 101)] <- NA
panel <- panel[-c(22, 23), ]            # unit u06 not surveyed in 2023 and 2024
panel_path <- file.path(out_dir, "linkage_panel.csv")
write.csv(panel, panel_path, row.names = FALSE, na = "")
panel <- read.csv(panel_path, colClasses = c(unit_id = "character", period = "character"))

# ------------------------------------------------------------------ cor.test
ct <- function(d, x, y, method) {
  ok <- complete.cases(d[[x]], d[[y]])
  r <- if (method == "pearson") cor.test(d[[x]][ok], d[[y]][ok]) else
    suppressWarnings(cor.test(d[[x]][ok], d[[y]][ok], method = "spearman", exact = FALSE))
  list(x = x, y = y, method = method, n = sum(ok), r = unname(r$estimate),
       ci_low = if (is.null(r$conf.int)) NA else r$conf.int[1],
       ci_high = if (is.null(r$conf.int)) NA else r$conf.int[2], p_val = r$p.value)
}
att_x <- c("complaints", "privileges", "learning", "raises", "critical", "advance")
rows <- list()
for (m in c("pearson", "spearman")) for (x in att_x) rows[[length(rows) + 1]] <- ct(att, x, "rating", m)
ref$cor_attitude <- rows
# BH across the 6 Pearson pairs of one call
pp <- sapply(Filter(function(r) r$method == "pearson", rows), `[[`, "p_val")
ref$cor_attitude_p_bh <- p.adjust(pp, "BH")

cs <- panel[panel$period == "2025", ]
rows <- list()
for (m in c("pearson", "spearman")) for (x in c("ex", "engagement")) for (y in c("cx", "headcount"))
  rows[[length(rows) + 1]] <- ct(cs, x, y, m)
ref$cor_panel_2025 <- rows

# Partial correlation by residuals; t-test with n - 2 - k df, Fisher z with n - k - 3.
pcor_ref <- function(d, x, y, covar, method) {
  d <- d[complete.cases(d[, c(x, y, covar)]), c(x, y, covar)]
  if (method == "spearman") d[] <- lapply(d, rank)
  f <- function(v) resid(lm(reformulate(covar, v), data = d))
  r <- cor(f(x), f(y)); n <- nrow(d); k <- length(covar)
  tt <- r * sqrt((n - 2 - k) / (1 - r^2))
  z <- atanh(r); se <- 1 / sqrt(n - k - 3)
  list(x = x, y = y, method = method, covar = covar, n = n, r = r,
       ci_low = tanh(z - qnorm(0.975) * se), ci_high = tanh(z + qnorm(0.975) * se),
       p_val = 2 * pt(-abs(tt), n - 2 - k))
}
ref$pcor_attitude <- list(
  pcor_ref(att, "complaints", "rating", c("privileges", "learning"), "pearson"),
  pcor_ref(att, "learning", "rating", c("complaints"), "pearson"),
  pcor_ref(att, "complaints", "rating", c("privileges", "learning"), "spearman"))

# ------------------------------------------------------------------ cross-lagged
lag_frame <- function(d, covar = character(0)) {
  d$t <- match(d$period, periods)
  a <- d[, c("unit_id", "t", "ex", "cx", covar)]
  b <- d[, c("unit_id", "t", "ex", "cx")]; names(b)[3:4] <- c("ex1", "cx1"); b$t <- b$t - 1
  m <- merge(a, b, by = c("unit_id", "t"))
  m <- m[complete.cases(m), ]
  m[order(m$unit_id, m$t), ]
}
cl_ref <- function(covar = character(0), period_effects = FALSE) {
  m <- lag_frame(panel, covar)
  vars <- c("ex", "cx", covar, "ex1", "cx1")
  z <- m; z[vars] <- scale(m[vars])
  z$transition <- factor(z$t)
  G <- length(unique(m$unit_id))
  res <- list(n_obs = nrow(m), n_units = G, covar = covar, period_effects = period_effects,
              paths = list())
  for (eq in list(c("cx1", "ex", "cx"), c("ex1", "cx", "ex"))) {
    fml <- reformulate(c(eq[2], eq[3], covar, if (period_effects) "transition"), eq[1])
    fit <- lm(fml, data = z)
    V <- vcovCL(fit, cluster = ~unit_id, type = "HC1")   # CR1
    # CR1 by hand as a cross-check of sandwich
    X <- model.matrix(fit); e <- resid(fit); N <- nrow(X); K <- ncol(X)
    bread <- solve(crossprod(X))
    meat <- Reduce(`+`, lapply(split(seq_len(N), z$unit_id), function(i) {
      s <- crossprod(X[i, , drop = FALSE], e[i]); s %*% t(s) }))
    Vh <- G / (G - 1) * (N - 1) / (N - K) * bread %*% meat %*% bread
    stopifnot(max(abs(V - Vh)) < 1e-12)
    est <- coef(fit); se <- sqrt(diag(V)); tt <- est / se
    for (p in setdiff(names(est)[-1], grep("^transition", names(est), value = TRUE))) {
      res$paths[[length(res$paths) + 1]] <- list(
        source = p, target = sub("1$", "", eq[1]), estimate = unname(est[p]),
        se = unname(se[p]), p_val = 2 * pt(-abs(tt[p]), G - 1),
        ci_low = unname(est[p] - qt(0.975, G - 1) * se[p]),
        ci_high = unname(est[p] + qt(0.975, G - 1) * se[p]),
        r2 = summary(fit)$r.squared)
    }
  }
  if (period_effects) return(res)
  # lavaan: the two-wave cross-lagged path model on the same standardized data
  model <- paste0("cx1 ~ ", paste(c("ex", "cx", covar), collapse = " + "), "\n",
                  "ex1 ~ ", paste(c("cx", "ex", covar), collapse = " + "), "\n",
                  "cx1 ~~ ex1")
  fit <- sem(model, data = z)
  pe <- parameterEstimates(fit)
  pe <- pe[pe$op == "~", ]
  res$lavaan <- lapply(seq_len(nrow(pe)), function(i)
    list(source = pe$rhs[i], target = sub("1$", "", pe$lhs[i]), estimate = pe$est[i]))
  res
}
ref$cross_lagged <- cl_ref()
ref$cross_lagged_covar <- cl_ref("headcount")
ref$cross_lagged_period_effects <- cl_ref(period_effects = TRUE)

# ------------------------------------------------------------------ incremental validity
iv_ref <- function(d, y, drivers, engagement) {
  d <- d[complete.cases(d[, c(y, drivers, engagement)]), ]
  m0 <- lm(reformulate("1", y), d)
  out <- list()
  for (seq in list(list("engagement first", engagement, drivers), list("drivers first", drivers, engagement))) {
    m1 <- lm(reformulate(seq[[2]], y), d)
    m2 <- lm(reformulate(c(seq[[2]], seq[[3]]), y), d)
    a1 <- anova(m0, m1); a2 <- anova(m1, m2)
    r1 <- summary(m1)$r.squared; r2 <- summary(m2)$r.squared
    out[[length(out) + 1]] <- list(sequence = seq[[1]], step = 1, r2 = r1, delta_r2 = r1,
      f = a1$F[2], df1 = a1$Df[2], df2 = a1$Res.Df[2], p_val = a1$`Pr(>F)`[2], n = nrow(d))
    out[[length(out) + 1]] <- list(sequence = seq[[1]], step = 2, r2 = r2, delta_r2 = r2 - r1,
      f = a2$F[2], df1 = a2$Df[2], df2 = a2$Res.Df[2], p_val = a2$`Pr(>F)`[2], n = nrow(d))
  }
  out
}
ref$incremental_attitude <- iv_ref(att, "rating", c("complaints", "privileges", "raises", "critical"),
                                   c("learning", "advance"))

# ------------------------------------------------------------------ relative weights (Johnson 2000), by hand
rw_ref <- function(d, y, x) {
  R <- cor(d[, c(x, y)])
  Rxx <- R[x, x]; rxy <- R[x, y]
  e <- eigen(Rxx, symmetric = TRUE)
  Lam <- e$vectors %*% diag(sqrt(e$values)) %*% t(e$vectors)
  beta <- solve(Lam) %*% rxy
  eps <- as.vector((Lam^2) %*% (beta^2))
  r2 <- summary(lm(reformulate(x, y), d))$r.squared
  list(drivers = x, weight = eps, r2 = r2, pct_r2 = 100 * eps / sum(eps))
}
ref$rw_attitude <- rw_ref(att, "rating", att_x)
ref$rw_mtcars <- rw_ref(mt, "mpg", c("cyl", "disp", "hp", "gear"))

write_json(ref, file.path(out_dir, "linkage_reference.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE, na = "null")
cat("wrote", file.path(out_dir, "linkage_reference.json"), "\n")
