# Reference values for the measurement-error RI-CLPM in tests/test_riclpm.py
# (exresearch.riclpm.riclpm_fit(..., error_var=...)).
#
# Run from the repository root:   Rscript tests/r/riclpm_error.R
# Reads tests/data/riclpm_error_complete.csv (200 units x 4 waves) and
# tests/data/riclpm_error_missing.csv (250 units x 3 waves, 10% of values missing), written
# by tests/r/riclpm_error_data.py (seeded), and writes tests/data/riclpm_error_reference.json.
# The Python tests never call R.
#
# Model: the RI-CLPM of tests/r/riclpm.R (Mulder & Hamaker 2021 syntax, lagged paths equal
# over waves, full-information ML with missing = "ml", observed information from the
# Hessian), except that each observed indicator's residual variance is fixed at its known
# measurement-error variance (x1 ~~ 0.6*x1) instead of 0: each indicator loads 1 on its
# within latent, which carries the dynamics. The error variances are those the data were
# simulated with (ERROR in riclpm_error_data.py); they are written into the JSON so the
# test passes the same values.
# Packages: lavaan, jsonlite.

suppressPackageStartupMessages({
  library(jsonlite)
  library(lavaan)
})

errors <- list(
  complete = list(x = rep(0.6, 4), y = rep(0.4, 4)),
  missing = list(x = c(0.5, 0.7, 0.4), y = c(0.3, 0.3, 0.6))
)

riclpm_error_syntax <- function(T, ex, ey, equal = FALSE) {
  w <- seq_len(T)
  lines <- c(
    paste0("RIx =~ ", paste0("1*x", w, collapse = " + ")),
    paste0("RIy =~ ", paste0("1*y", w, collapse = " + ")),
    paste0("wx", w, " =~ 1*x", w),
    paste0("wy", w, " =~ 1*y", w),
    paste0("wx", w[-1], " ~ a*wx", w[-T], " + b*wy", w[-T]),
    paste0("wy", w[-1], " ~ c*wx", w[-T], " + d*wy", w[-T]),
    "wx1 ~~ wx1", "wy1 ~~ wy1", "wx1 ~~ wy1",
    if (equal) paste0("wx", w[-1], " ~~ vx*wx", w[-1]) else paste0("wx", w[-1], " ~~ wx", w[-1]),
    if (equal) paste0("wy", w[-1], " ~~ vy*wy", w[-1]) else paste0("wy", w[-1], " ~~ wy", w[-1]),
    if (equal) paste0("wx", w[-1], " ~~ cxy*wy", w[-1]) else paste0("wx", w[-1], " ~~ wy", w[-1]),
    "RIx ~~ RIx", "RIy ~~ RIy", "RIx ~~ RIy",
    # the known measurement-error variances (0 in tests/r/riclpm.R)
    paste0("x", w, " ~~ ", format(ex, digits = 17), "*x", w),
    paste0("y", w, " ~~ ", format(ey, digits = 17), "*y", w)
  )
  paste(lines, collapse = "\n")
}

fit_one <- function(name, T, equal = FALSE) {
  d <- read.csv(file.path("tests", "data", paste0("riclpm_error_", name, ".csv")))
  e <- errors[[name]]
  model <- riclpm_error_syntax(T, e$x, e$y, equal)
  fit <- lavaan(model, data = d, missing = "ml", meanstructure = TRUE,
                int.ov.free = TRUE, information = "observed",
                observed.information = "hessian")
  pe <- parameterEstimates(fit)
  get <- function(lhs, op, rhs) {
    row <- pe[pe$lhs == lhs & pe$op == op & pe$rhs == rhs, ]
    c(est = row$est[1], se = row$se[1])
  }
  v <- vcov(fit)
  rob <- lavaan(model, data = d, missing = "ml", meanstructure = TRUE,
                int.ov.free = TRUE, estimator = "MLR", information = "observed",
                observed.information = "hessian")
  pr <- parameterEstimates(rob)
  rse <- function(lhs, rhs) pr$se[pr$lhs == lhs & pr$op == "~" & pr$rhs == rhs][1]
  out <- list(
    error_x = e$x, error_y = e$y,
    x_to_x = get("wx2", "~", "wx1"), y_to_x = get("wx2", "~", "wy1"),
    x_to_y = get("wy2", "~", "wx1"), y_to_y = get("wy2", "~", "wy1"),
    w1_var_x = get("wx1", "~~", "wx1"), w1_cov = get("wx1", "~~", "wy1"),
    w1_var_y = get("wy1", "~~", "wy1"),
    ri_var_x = get("RIx", "~~", "RIx"), ri_cov = get("RIx", "~~", "RIy"),
    ri_var_y = get("RIy", "~~", "RIy"),
    innov2_var_x = get("wx2", "~~", "wx2"), innov2_cov = get("wx2", "~~", "wy2"),
    innov2_var_y = get("wy2", "~~", "wy2"),
    innov3_var_x = get("wx3", "~~", "wx3"), innov3_cov = get("wx3", "~~", "wy3"),
    innov3_var_y = get("wy3", "~~", "wy3"),
    mean_x1 = get("x1", "~1", ""), mean_y1 = get("y1", "~1", ""),
    cov_xy_yx = v["c", "b"],
    robust_se = list(x_to_x = rse("wx2", "wx1"), y_to_x = rse("wx2", "wy1"),
                     x_to_y = rse("wy2", "wx1"), y_to_y = rse("wy2", "wy1")),
    loglik = as.numeric(logLik(fit)),
    n = nobs(fit)
  )
  out
}

ref <- list(
  meta = list(R = R.version.string, lavaan = as.character(packageVersion("lavaan"))),
  complete = fit_one("complete", 4),
  missing = fit_one("missing", 3),
  complete_equal = fit_one("complete", 4, equal = TRUE),
  missing_equal = fit_one("missing", 3, equal = TRUE)
)
for (k in c("complete_equal", "missing_equal")) {
  for (v in c("var_x", "cov", "var_y")) {
    ref[[k]][[paste0("innov_", v)]] <- ref[[k]][[paste0("innov2_", v)]]
    ref[[k]][[paste0("innov2_", v)]] <- NULL
    ref[[k]][[paste0("innov3_", v)]] <- NULL
  }
}
writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path("tests", "data", "riclpm_error_reference.json"))
