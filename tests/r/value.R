# Reference values for tests/test_value.py (exresearch.value: the joint driver model,
# the value chain and the published utility).
#
# Run from the repository root:   Rscript tests/r/value.R
# Writes tests/data/value_units.csv and tests/data/value_reference.json. The Python
# tests never call R.
#
# Data:
#   * attitude (R datasets; tests/data/linkage_attitude.csv, written by linkage.R):
#     30 departments of a financial organisation, % favourable; rating is the outcome.
#   * a simulated unit table (set.seed below): six correlated drivers, NPS, an EX index
#     and revenue growth with a direct EX path.
# Packages: stats, jsonlite. Relative weights by hand (Johnson 2000, as in linkage.R);
# the joint regression, its SEs and p-values and predictions are R's lm.

suppressPackageStartupMessages(library(jsonlite))
out_dir <- file.path("tests", "data")
ref <- list(meta = list(R = R.version.string))

rw <- function(d, y, x) {
  R <- cor(d[, c(x, y)])
  e <- eigen(R[x, x], symmetric = TRUE)
  Lam <- e$vectors %*% diag(sqrt(e$values)) %*% t(e$vectors)
  beta <- solve(Lam) %*% R[x, y]
  as.vector((Lam^2) %*% (beta^2))
}

driver_ref <- function(d, y, x) {
  fit <- lm(reformulate(x, y), d)
  s <- summary(fit)$coefficients
  q3 <- sapply(x, function(v) unname(quantile(d[[v]], 0.75, type = 1)))
  gap <- sapply(x, function(v) mean(pmax(0, q3[[v]] - d[[v]])))
  closed <- d
  for (v in x) closed[[v]] <- pmax(d[[v]], q3[[v]])
  list(drivers = x, weight = rw(d, y, x), r2 = summary(fit)$r.squared,
       coef = unname(coef(fit)[x]), se = unname(s[x, "Std. Error"]),
       p = unname(s[x, "Pr(>|t|)"]), target = unname(q3), gap = unname(gap),
       delta = unname(coef(fit)[x] * gap),
       all_closed = mean(predict(fit, closed)) - mean(predict(fit)))
}

att <- read.csv(file.path(out_dir, "linkage_attitude.csv"))
att_x <- c("complaints", "privileges", "learning", "raises", "critical", "advance")
ref$attitude <- driver_ref(att, "rating", att_x)

set.seed(20261202)
n <- 80
S <- matrix(0.5, 6, 6); diag(S) <- 1
z <- matrix(rnorm(n * 6), n, 6) %*% chol(S)
drv <- c("tools", "empowerment", "training", "knowledge", "leader", "flexibility")
units <- data.frame(unit_id = sprintf("u%02d", 1:n), round(3.7 + 0.35 * z, 4))
names(units)[-1] <- drv
units$ex_index <- rowMeans(units[, drv])
units$nps <- round(30 + as.matrix(units[, drv] - 3.7) %*% c(12, 9, 3, 3, 9, 0) + rnorm(n, 0, 14), 2)
units$revenue_growth <- round(3 + 0.08 * (units$nps - 30) + 2 * (units$ex_index - 3.7) +
                              rnorm(n, 0, 2.5), 3)
units$csat <- round(80 + 6 * (units$ex_index - 3.7) + rnorm(n, 0, 2), 2)
units$respondents <- rep(c(3, 8, 12, 20), length.out = n)
path <- file.path(out_dir, "value_units.csv")
write.csv(units, path, row.names = FALSE)
units <- read.csv(path)
units$ex_index <- rowMeans(units[, drv])   # the Python test recomputes it the same way

ref$units <- driver_ref(units, "nps", drv)
bfit <- lm(revenue_growth ~ nps + ex_index, units)
ref$units$business_slope <- unname(coef(bfit)["nps"])
ref$units$simple_slope <- unname(coef(lm(revenue_growth ~ nps, units))["nps"])

# published utility of the EX index for NPS (points) and CSAT (percent)
util <- function(d, x, y) {
  q <- quantile(d[[x]], c(0.25, 0.75))          # type 7, as numpy's default
  top <- d[[x]] >= q[2]; bot <- d[[x]] <= q[1]
  r <- cor(d[[x]], d[[y]]); med <- median(d[[y]])
  tab <- matrix(c(sum(d[[y]][top] > med), sum(d[[y]][top] <= med),
                  sum(d[[y]][bot] > med), sum(d[[y]][bot] <= med)), 2, byrow = TRUE)
  list(y = y, r = r, sd_y = sd(d[[y]]), mean_top = mean(d[[y]][top]),
       mean_bottom = mean(d[[y]][bot]), above_median_top = mean(d[[y]][top] > med),
       above_median_bottom = mean(d[[y]][bot] > med),
       odds_ratio = (tab[1, 1] * tab[2, 2]) / (tab[1, 2] * tab[2, 1]))
}
ref$utility <- list(util(units, "ex_index", "nps"), util(units, "ex_index", "csat"))

write_json(ref, file.path(out_dir, "value_reference.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE)
cat("wrote", file.path(out_dir, "value_reference.json"), "\n")
