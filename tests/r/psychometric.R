# Reference values for tests/test_psychometric.py and tests/test_moderators.py.
#
# Run from the repository root:  Rscript tests/r/psychometric.R
# Writes tests/data/psychometric_clients.csv (the data) and
# tests/data/psychometric_reference.json. The test suite reads these files and never calls R.
#
# 1. Hunter-Schmidt psychometric meta-analysis with individual corrections, written out by
#    hand from psychmeta's source (ma_r_ic with hs_override = TRUE; psychmeta 2.7,
#    R/ma_r_ic.R, R/ma_r_bb.R, R/correct_r_internal.R, R/estimate_artifacts.R,
#    R/intervals.R), because psychmeta is not a Debian package:
#      - r corrected for small-sample bias: r / ((2n - 2) / (2n - 1))   (correct_r_bias)
#      - measurement error only: rho = r / sqrt(rxx * ryy)
#      - direct range restriction in X (Case II, .correct_r_uvdrr):
#        r1 = r / sqrt(ryy); rxxa = 1 - ux^2 (1 - rxx) (estimate_rxxa for an
#        internal-consistency reliability); rho = r1 / (ux sqrt((ux^-2 - 1) r1^2 + 1)) / sqrt(rxxa)
#      - A = r / rho; a = 1 / ((ux^-2 - 1) r^2 + 1)  (.refine_var_rr, direct)
#      - var_e_i = (1 - mean_r^2)^2 / (n - 1); weights n (bare-bones), n A^2 (corrected);
#        var_e_c_i = var_e_i a^2 / A^2; population (not unbiased) weighted variances;
#        se = sd / sqrt(k); normal intervals; 80% credibility.
# 2. Mixed-effects meta-regression on continuous moderators with metafor::rma and its
#    exact permutation test metafor::permutest(exact = TRUE).
suppressMessages(library(metafor))
library(jsonlite)

out_dir <- file.path("tests", "data")

# Ten fictional clients: r over n units, ICC(2) of unit EX (rxx), outcome test-retest
# reliability (ryy), u ratio of unit EX SD to a reference SD (ux), and characteristics.
d <- data.frame(
  client = paste("Client", LETTERS[1:10]),
  r = c(0.51, 0.08, 0.62, -0.05, 0.27, 0.12, 0.46, -0.02, 0.39, 0.20),
  n = c(64, 118, 42, 81, 155, 60, 98, 46, 123, 79),
  rxx = c(0.82, 0.74, 0.69, 0.88, 0.79, 0.71, 0.85, 0.66, 0.80, 0.77),
  ryy = c(0.71, 0.80, 0.65, 0.75, 0.83, 0.69, 0.78, 0.72, 0.81, 0.74),
  ux = c(0.85, 0.92, 0.70, 0.95, 0.88, 0.79, 0.90, 0.74, 0.86, 0.93),
  revenue = c(120, 340, 55, 410, 600, 90, 220, 70, 480, 150),
  units = c(34, 58, 22, 41, 75, 30, 48, 26, 63, 39)
)
write.csv(d, file.path(out_dir, "psychometric_clients.csv"), row.names = FALSE)

wmean <- function(x, w) sum(x * w) / sum(w)
wvar <- function(x, w) sum(w * (x - wmean(x, w))^2) / sum(w)

ic <- function(r, n, rxx = 1, ryy = 1, ux = 1, correct_bias = TRUE) {
  k <- length(r)
  if (correct_bias) r <- r / ((2 * n - 2) / (2 * n - 1))
  rxx <- rep_len(rxx, k); ryy <- rep_len(ryy, k); ux <- rep_len(ux, k)
  rxxa <- 1 - ux^2 * (1 - rxx)
  r1 <- r / sqrt(ryy)
  rho_i <- (r1 / (ux * sqrt((1 / ux^2 - 1) * r1^2 + 1))) / sqrt(rxxa)
  A <- r / rho_i
  a <- 1 / ((ux^-2 - 1) * r^2 + 1)
  mean_r <- wmean(r, n)
  var_e_i <- (1 - mean_r^2)^2 / (n - 1)
  var_r <- wvar(r, n); var_e <- wmean(var_e_i, n); var_res <- var_r - var_e
  sd_res <- if (var_res > 0) sqrt(var_res) else 0
  w <- n * A^2
  var_e_c_i <- var_e_i * a^2 / A^2
  mean_rho <- wmean(rho_i, w)
  var_r_c <- wvar(rho_i, w); var_e_c <- wmean(var_e_c_i, w); var_rho <- var_r_c - var_e_c
  sd_rho <- if (var_rho > 0) sqrt(var_rho) else 0
  zc <- qnorm(0.975); zr <- qnorm(0.9)
  list(k = k, n = sum(n), mean_r = mean_r, var_r = var_r, var_e = var_e, var_res = var_res,
       sd_r = sqrt(var_r), sd_res = sd_res, pct_var_e = 100 * var_e / var_r,
       se_r_hs = sqrt(var_r / k),
       se_r = sqrt(sum(n^2 * (var_e_i + max(0, var_res)))) / sum(n),
       cr_low = mean_r - zr * sd_res, cr_high = mean_r + zr * sd_res,
       mean_rho = mean_rho, var_r_c = var_r_c, var_e_c = var_e_c, var_rho = var_rho,
       sd_r_c = sqrt(var_r_c), sd_rho = sd_rho, pct_var_artifacts = 100 * var_e_c / var_r_c,
       se_rho_hs = sqrt(var_r_c / k),
       se_rho = sqrt(sum(w^2 * (var_e_c_i + max(0, var_rho)))) / sum(w),
       rho_ci_low_hs = mean_rho - zc * sqrt(var_r_c / k),
       rho_cr_low = mean_rho - zr * sd_rho, rho_cr_high = mean_rho + zr * sd_rho,
       rho_i = rho_i, A = A, a = a, var_e_c_i = var_e_c_i)
}

ref <- list(metafor_version = as.character(packageVersion("metafor")))
ref$bare_bones <- ic(d$r, d$n)
ref$no_bias_correction <- ic(d$r, d$n, correct_bias = FALSE)
ref$both_sides <- ic(d$r, d$n, rxx = d$rxx, ryy = d$ryy)
ref$both_sides_range <- ic(d$r, d$n, rxx = d$rxx, ryy = d$ryy, ux = d$ux)
ref$constant_artifacts <- ic(d$r, d$n, rxx = 0.8, ryy = 0.7)

# Meta-regression on continuous moderators (standardised, as scale() does).
d$log_revenue <- log(d$revenue)
ctrl <- list(threshold = 1e-10, maxiter = 1000)
for (m in c("REML", "DL")) {
  res <- rma(measure = "ZCOR", ri = r, ni = n, mods = ~ scale(log_revenue) + scale(units),
             data = d, method = m, control = ctrl)
  ref[[paste0("metareg_", m)]] <- list(
    estimate = as.numeric(res$beta), se = as.numeric(res$se), z = as.numeric(res$zval),
    p_val = as.numeric(res$pval), tau2 = res$tau2, qm = res$QM, qm_p = res$QMp,
    qe = res$QE, qe_p = res$QEp, r2 = res$R2 / 100)
}
# Exact permutation test on the first six clients (6! = 720 permutations).
d6 <- d[1:6, ]
for (m in c("REML", "DL")) {
  res <- rma(measure = "ZCOR", ri = r, ni = n, mods = ~ scale(log_revenue), data = d6,
             method = m, control = ctrl)
  pt <- permutest(res, exact = TRUE, progbar = FALSE)
  ref[[paste0("permutest6_", m)]] <- list(
    estimate = as.numeric(res$beta), qm = res$QM, qm_p = res$QMp,
    p_perm = as.numeric(pt$pval), qm_p_perm = pt$QMp)
}

# Exact permutation test with tied moderator values (a two-level factor, 6 + 4 clients:
# 10! / (6! 4!) = 210 distinct permutations).
d$grp <- c("a", "a", "b", "a", "b", "a", "a", "b", "a", "b")
res <- rma(measure = "ZCOR", ri = r, ni = n, mods = ~ factor(grp), data = d, method = "REML",
           control = ctrl)
pt <- permutest(res, exact = TRUE, progbar = FALSE)
ref$permutest_groups_REML <- list(
  n_perm = choose(10, 4), estimate = as.numeric(res$beta), qm = res$QM,
  p_perm = as.numeric(pt$pval), qm_p_perm = pt$QMp)

writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(out_dir, "psychometric_reference.json"))
cat("wrote", file.path(out_dir, "psychometric_reference.json"), "\n")
