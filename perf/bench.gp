# perf/bench.gp - charts for docs/benchmarks.md; called by perf/bench_report.py
# with -e "work='DIR'; docs='DIR'" (DIR of the sorted sample files *.dat).
set terminal pngcairo size 1200,800 noenhanced font ",10"
set output docs.'/benchmarks-latency.png'
set multiplot layout 2,2 title 'Latency distributions (CDF; x log scale)'
set grid
set key bottom right
set ylabel 'fraction of samples'
set logscale x
cdf(f) = sprintf("< awk '{a[NR]=$1} END{for(i=1;i<=NR;i++) print a[i], i/NR}' %s", f)
have(f) = system('test -s '.f.' && echo 1 || echo 0') eq "1"

set title 'exec -> API socket accepting'
set key top left
set xlabel 'ms'
plot (have(work.'/exec_ember_ms.dat') ? cdf(work.'/exec_ember_ms.dat') : '< echo 1 0') u 1:2 w steps lw 2 t 'Ember', \
     (have(work.'/exec_qemu_ms.dat') ? cdf(work.'/exec_qemu_ms.dat') : '< echo 1 0') u 1:2 w steps lw 2 t 'QEMU (QMP greeting)'

set key bottom right
set title 'PUT /actions InstanceStart round trip (tiny guest)'
set xlabel 'ms'
plot (have(work.'/instancestart_ms.dat') ? cdf(work.'/instancestart_ms.dat') : '< echo 1 0') u 1:2 w steps lw 2 t 'Ember'

set title 'API request latency (GET / and PUT /machine-config)'
set xlabel 'us'
s1 = have(work.'/api_c1_us.dat') ? '' : '_no_seccomp'
s100 = have(work.'/api_c100_us.dat') ? '' : '_no_seccomp'
plot (have(work.'/api_c1'.s1.'_us.dat') ? cdf(work.'/api_c1'.s1.'_us.dat') : '< echo 1 0') u 1:2 w steps lw 2 t '1 client'.(s1 eq '' ? '' : ' (--no-seccomp)'), \
     (have(work.'/api_c100'.s100.'_us.dat') ? cdf(work.'/api_c100'.s100.'_us.dat') : '< echo 1 0') u 1:2 w steps lw 2 t '100 clients, open loop'.(s100 eq '' ? '' : ' (--no-seccomp)'), \
     (have(work.'/api_c100sat'.s100.'_us.dat') ? cdf(work.'/api_c100sat'.s100.'_us.dat') : '< echo 1 0') u 1:2 w steps lw 2 t '100 clients, saturation'

set title 'tiny-guest launch: exec -> first output (all at once) and -> ember exit'
set xlabel 'ms'
plot (have(work.'/launch_par1_ms.dat') ? cdf(work.'/launch_par1_ms.dat') : '< echo 1 0') u 1:2 w steps lw 2 t 'sequential', \
     (have(work.'/launch_par2_ms.dat') ? cdf(work.'/launch_par2_ms.dat') : '< echo 1 0') u 1:2 w steps lw 2 t '2 at a time', \
     (have(work.'/launch_first_ms.dat') ? cdf(work.'/launch_first_ms.dat') : '< echo 1 0') u 1:2 w steps lw 2 t 'exec -> first output, all at once'
unset multiplot

set output docs.'/benchmarks-density.png'
unset logscale x
set multiplot layout 1,2 title 'Density: N idle embers (API socket up, no InstanceStart)'
set xlabel 'N'
set title 'launch rate to API socket accepting'
set ylabel 'VMs/s'
plot work.'/density.dat' u 1:2 w linespoints lw 2 pt 7 t 'Ember'
set title 'PSS per VM (median)'
set ylabel 'KiB'
set yrange [0:*]
plot work.'/density.dat' u 1:3 w linespoints lw 2 pt 7 t 'Ember'
unset multiplot
