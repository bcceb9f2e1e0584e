#!/bin/sh
# Check the CT sensor overlays the way a Raspberry Pi uses them:
#   1. dt-doc-validate the binding
#      (Documentation/devicetree/bindings/iio/afe/gridmeter,ct-sensor.yaml),
#   2. rebuild the Raspberry Pi 3 B and 4 B DTBs from Debian's
#      linux-source-6.1 with symbols (dtc -@),
#   3. compile every *-overlay.dts here with dtc -@,
#   4. apply each overlay to each DTB with fdtoverlay,
#   5. dt-validate the result against the binding and the kernel's MCP320x
#      binding.
# Output in build/dts-overlays. Exit status non-zero on any failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cache=$top/build/cache/ct-dts
out=$top/build/dts-overlays
tarball=/usr/src/linux-source-6.1.tar.xz
src=$cache/linux-source-6.1
bindings=$top/Documentation/devicetree/bindings
mkdir -p "$cache" "$out"

if [ ! -f "$src/.ct-extracted" ]; then
	[ -f "$tarball" ] || { echo "check.sh: $tarball missing (linux-source-6.1)" >&2; exit 1; }
	tar -xJf "$tarball" -C "$cache" --wildcards \
		'linux-source-6.1/arch/arm/boot/dts/bcm2*' \
		'linux-source-6.1/arch/arm64/boot/dts/broadcom/bcm2*' \
		'linux-source-6.1/include/dt-bindings/*' \
		'linux-source-6.1/scripts/dtc/include-prefixes/*' \
		'linux-source-6.1/Documentation/devicetree/bindings/iio/adc/microchip,mcp3201.yaml' \
		'linux-source-6.1/Documentation/devicetree/bindings/spi/*peripheral-props.yaml'
	touch "$src/.ct-extracted"
fi

# 1. the binding (dt-doc-validate reports problems but exits 0)
msg=$(dt-doc-validate -u "$bindings" "$bindings/iio/afe/gridmeter,ct-sensor.yaml" 2>&1)
if [ -n "$msg" ]; then
	echo "$msg"
	echo "FAIL binding"
	exit 1
fi
echo "ok   binding (dt-doc-validate)"

# schemas: ours, the ADC's and the SPI peripheral ones it refers to, with
# dtschema's core schemas
ks=$src/Documentation/devicetree/bindings
rm -rf "$out/schemas"
mkdir -p "$out/schemas/iio/afe" "$out/schemas/iio/adc" "$out/schemas/spi"
cp "$bindings/iio/afe/gridmeter,ct-sensor.yaml" "$out/schemas/iio/afe/"
cp "$ks/iio/adc/microchip,mcp3201.yaml" "$out/schemas/iio/adc/"
cp "$ks"/spi/*peripheral-props.yaml "$out/schemas/spi/"
dt-mk-schema -j "$out/schemas" >"$out/processed-schema.json"

fail=0
for board in bcm2837-rpi-3-b bcm2711-rpi-4-b; do
	cpp -nostdinc -undef -D__DTS__ -x assembler-with-cpp \
		-I "$src/scripts/dtc/include-prefixes" -I "$src/include" \
		-I "$src/arch/arm/boot/dts" -I "$src/arch/arm64/boot/dts" \
		"$src/arch/arm64/boot/dts/broadcom/$board.dts" |
		dtc -q -@ -I dts -O dtb -o "$out/$board.dtb" -
	for ov in "$top"/dts-overlays/*-overlay.dts; do
		name=$(basename "$ov" -overlay.dts)
		dtc -@ -I dts -O dtb -o "$out/$name.dtbo" "$ov"
		fdtoverlay -i "$out/$board.dtb" -o "$out/$board+$name.dtb" "$out/$name.dtbo"
		log=$out/$board+$name.validate.log
		dt-validate -s "$out/processed-schema.json" "$out/$board+$name.dtb" >"$log" 2>&1 || true
		# judge our nodes only: the upstream board DTBs have findings of their own
		if grep -E "ct-sensor|adc@0|ct-vref" "$log"; then
			echo "FAIL $board + $name (dt-validate)"
			fail=1
		elif [ "$(fdtget "$out/$board+$name.dtb" /ct-sensor compatible)" != gridmeter,ct-sensor ] ||
		     [ "$(fdtget "$out/$board+$name.dtb" /soc/spi@7e204000 status)" != okay ]; then
			echo "FAIL $board + $name: nodes missing after fdtoverlay"
			fail=1
		else
			echo "ok   $board + $name"
		fi
	done
done
exit $fail
